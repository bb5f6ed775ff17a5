// The page: microphone (AudioWorklet, resampled to 16 kHz) or a wave file -> websocket -> live results.
// Protocol (sherpa-onnx's): binary float32 samples, then "Done"; JSON {text, segment, is_final} back.
'use strict';

const statusLine = document.getElementById('status');
const startButton = document.getElementById('start');
const levelMeter = document.getElementById('level');
const fileInput = document.getElementById('file');
const partialLine = document.getElementById('partial');
const segmentList = document.getElementById('segments');

const serverUrl = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/';
let capture = null; // {socket, context, stream} while the microphone is on

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
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false, channelCount: 1 },
  });
  const context = new AudioContext();
  await context.audioWorklet.addModule('/static/capture-worklet.js');
  const source = context.createMediaStreamSource(stream);
  const resampler = new AudioWorkletNode(context, 'resample-16k');
  capture = { socket: null, context, stream };
  capture.socket = openSocket(() => {
    resampler.port.onmessage = (event) => {
      levelMeter.value = event.data.level;
      if (capture && capture.socket.readyState === WebSocket.OPEN) capture.socket.send(event.data.samples.buffer);
    };
    source.connect(resampler);
    setStatus('Listening at ' + context.sampleRate + ' Hz, sending 16 kHz; press Stop to finish');
  });
  startButton.textContent = 'Stop';
}

function stopMicrophone(sendDone) {
  if (!capture) return;
  const { socket, context, stream } = capture;
  capture = null;
  stream.getTracks().forEach((track) => track.stop());
  context.close();
  if (sendDone && socket.readyState === WebSocket.OPEN) socket.send('Done');
  levelMeter.value = 0;
  startButton.textContent = 'Start';
}

startButton.addEventListener('click', () => {
  if (capture) { stopMicrophone(true); return; }
  startMicrophone().catch((error) => { setStatus('Microphone: ' + error); capture = null; });
});

async function recognizeFile(file) {
  // decodeAudioData resamples to the context's rate: a 16 kHz OfflineAudioContext gives 16 kHz samples.
  const decoder = new OfflineAudioContext(1, 1, 16000);
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
