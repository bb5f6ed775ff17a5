// Runs in the audio thread: resamples the microphone (any rate) to 16 kHz with a windowed-sinc low-pass
// interpolator, and posts Float32Array pieces of about 100 ms, plus the input level, to the page.
const TARGET_RATE = 16000;
const HALF_TAPS = 16;            // zero crossings on each side of the interpolation kernel
const PIECE_SAMPLES = 1600;      // 100 ms at 16 kHz

class Resample16k extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = sampleRate / TARGET_RATE;              // input samples per output sample
    this.cutoff = Math.min(1, TARGET_RATE / sampleRate); // of the input Nyquist frequency
    this.reach = Math.ceil(HALF_TAPS / this.cutoff);   // input samples each side of an output sample
    this.history = new Float32Array(0);                 // input not yet fully used
    this.position = 0;                                  // next output time, in input samples of history
    this.piece = [];
    this.peak = 0;
  }

  kernel(x) {
    if (x === 0) return this.cutoff;
    const window = 0.5 * (1 + Math.cos(Math.PI * x / this.reach)); // Hann
    const t = Math.PI * this.cutoff * x;
    return this.cutoff * Math.sin(t) / t * window;
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true;
    const joined = new Float32Array(this.history.length + channel.length);
    joined.set(this.history);
    joined.set(channel, this.history.length);
    while (this.position + this.reach < joined.length) {
      const center = Math.floor(this.position);
      let sum = 0;
      for (let k = center - this.reach + 1; k <= center + this.reach; k++) {
        if (k >= 0) sum += joined[k] * this.kernel(this.position - k);
      }
      this.piece.push(sum);
      this.peak = Math.max(this.peak, Math.abs(sum));
      this.position += this.step;
    }
    const keepFrom = Math.max(0, Math.floor(this.position) - this.reach);
    this.history = joined.slice(keepFrom);
    this.position -= keepFrom;
    if (this.piece.length >= PIECE_SAMPLES) {
      this.port.postMessage({ samples: Float32Array.from(this.piece), level: this.peak });
      this.piece = [];
      this.peak = 0;
    }
    return true;
  }
}

registerProcessor('resample-16k', Resample16k);
