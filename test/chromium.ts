/** Headless Chromium with WebGPU for the browser tests: shared with `npm run bench:web`. */
export { CHROMIUM, CHROMIUM_FLAGS, haveChromium } from '../src/bench/chromium.js';
