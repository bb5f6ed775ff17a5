// The page: microphone (AudioWorklet, resampled to 16 kHz) or a wave file -> websocket -> live results.
// Protocol (sherpa-onnx's): binary float32 samples, then "Done"; JSON {text, segment, is_final} back.
// The page's address may say ?seconds=S: the microphone then stops by itself, sending "Done", after exactly S
// seconds of 16 kHz audio (a time limit for a kiosk; the browser test sends one play of a looping fake microphone).
'use strict';

const statusLine = document.getElementById('status');
const startButton = document.getElementById('start');
const levelMeter = document.getElementById('level');
const fileInput = document.getElementById('file');
const partialLine = document.getElementById('partial');
const segmentList = document.getElementById('segments');

const serverUrl = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/';
const SAMPLE_RATE = 16000;
const secondsLimit = parseFloat(new URLSearchParams(location.search).get('seconds'));
const maxSamples = secondsLimit > 0 ? Math.round(secondsLimit * SAMPLE_RATE) : Infinity;
let capture = null; // {socket, context, stream, pending, sent, finished} while the microphone is on

function setStatus(text) { statusLine.textContent = text; }

function showResult(result) {
  if (result.error) { setStatus('Server error: ' + result.error); return; }
  if (result.is_final) {
    if (result.text) {
      const item = document.createElement('li');
      item.value = result.segment;
      item.className = 'final';
      item.textContent = result.text;
      segmentList.appendChild(item);
    }
    partialLine.textContent = '';
  } else {
    partialLine.textContent = result.text;
  }
}

function openSocket(onOpen) {
  const socket = new WebSocket(serverUrl);
  socket.binaryType = 'arraybuffer';
  socket.onopen = () => { setStatus('Connected to ' + serverUrl); onOpen(socket); };
  socket.onmessage = (event) => showResult(JSON.parse(event.data));
  socket.onerror = () => setStatus('Cannot connect to ' + serverUrl + ' (is the server busy or down?)');
  socket.onclose = (event) => {
    setStatus('Disconnected' + (event.code !== 1000 ? ' (code ' + event.code + (event.reason ? ': ' + event.reason : '') + ')' : ''));
    if (capture && capture.socket === socket) stopMicrophone(false);
  };
  return socket;
}

async function startMicrophone() {
  // The worklet is loaded before the microphone starts and is connected at once, and its pieces wait in
  // `pending` until the socket is open: the first syllable is not lost to the set-up.
  const context = new AudioContext();
  await context.audioWorklet.addModule('/static/capture-worklet.js');
  const resampler = new AudioWorkletNode(context, 'resample-16k');
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false, channelCount: 1 },
  }).catch((error) => { context.close(); throw error; });
  const session = { socket: null, context, stream, pending: [], sent: 0, finished: false };
  capture = session;
  resampler.port.onmessage = (event) => {
    levelMeter.value = event.data.level;
    sendSamples(session, event.data.samples);
  };
  context.createMediaStreamSource(stream).connect(resampler);
  session.socket = openSocket((socket) => {
    session.pending.forEach((piece) => socket.send(piece.buffer));
    session.pending = [];
    if (session.finished) socket.send('Done');
    else setStatus('Listening at ' + context.sampleRate + ' Hz, sending 16 kHz; press Stop to finish'
      + (maxSamples < Infinity ? ' (it stops by itself after ' + secondsLimit.toFixed(1) + ' s)' : ''));
  });
  startButton.textContent = 'Stop';
}

function sendSamples(session, samples) {
  // samples: Float32Array at 16 kHz; at most maxSamples in all are sent, then the microphone stops.
  if (capture !== session) return;
  const piece = samples.length > maxSamples - session.sent ? samples.slice(0, maxSamples - session.sent) : samples;
  session.sent += piece.length;
  if (session.socket.readyState === WebSocket.OPEN) session.socket.send(piece.buffer);
  else session.pending.push(piece);
  if (session.sent >= maxSamples) stopMicrophone(true);
}

function stopMicrophone(sendDone) {
  if (!capture) return;
  const session = capture;
  capture = null;
  session.stream.getTracks().forEach((track) => track.stop());
  session.context.close();
  if (sendDone && session.socket.readyState === WebSocket.OPEN) session.socket.send('Done');
  else if (sendDone && session.socket.readyState === WebSocket.CONNECTING) session.finished = true; // sent on open
  levelMeter.value = 0;
  startButton.textContent = 'Start';
}

startButton.addEventListener('click', () => {
  if (capture) { stopMicrophone(true); return; }
  startMicrophone().catch((error) => { setStatus('Microphone: ' + error); capture = null; });
});

async function recognizeFile(file) {
  // decodeAudioData resamples to the context's rate: a 16 kHz OfflineAudioContext gives 16 kHz samples.
  const decoder = new OfflineAudioContext(1, 1, SAMPLE_RATE);
  const audio = await decoder.decodeAudioData(await file.arrayBuffer());
  const samples = audio.getChannelData(0);
  setStatus('Recognizing ' + file.name + ' (' + audio.duration.toFixed(1) + ' s)');
  openSocket((socket) => {
    const piece = 1600;
    for (let begin = 0; begin < samples.length; begin += piece) {
      socket.send(samples.slice(begin, begin + piece).buffer);
    }
    socket.send('Done');
  });
}

fileInput.addEventListener('change', () => {
  if (fileInput.files.length) recognizeFile(fileInput.files[0]).catch((error) => setStatus('File: ' + error));
});
