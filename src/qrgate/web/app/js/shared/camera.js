// Reading QR codes: live from the camera, from a picked photo or screenshot. Frames are
// decoded in the page by zxing-wasm (zxing-cpp, the decoder the server uses too), whose
// WebAssembly file is served by qrgate itself: nothing is fetched from another host.
import {
  prepareZXingModule,
  readBarcodes,
} from "../../../vendor/zxing-wasm/dist/es/reader/index.js";
import { FRAME_MARK } from "./metrics.js";

const WASM_URL = new URL("../../../vendor/zxing-wasm/dist/reader/zxing_reader.wasm",
  import.meta.url).href;
const READER_OPTIONS = { formats: ["QRCode"], tryHarder: true, maxNumberOfSymbols: 1 };
// A frame every ~100 ms is smooth enough to aim with and leaves the phone's CPU idle half
// the time; decoding a 720p frame takes 20-60 ms.
const FRAME_INTERVAL_MS = 100;

prepareZXingModule({
  overrides: { locateFile: (path, prefix) => (path.endsWith(".wasm") ? WASM_URL : prefix + path) },
});

async function firstText(input) {
  const [found] = await readBarcodes(input, READER_OPTIONS);
  return found && found.isValid ? found.text : null;
}

/** The QR text in an image file (photo, screenshot), or null. */
export function readFile(file) {
  return firstText(file);
}

/**
 * Show the back camera in `video` and call `onText(text)` once for the first code read.
 * Each decode is recorded as a performance measure "qrgate:decode"; the frame that gave
 * the code is marked "qrgate:frame" so a screen can measure frame-to-screen time.
 * @returns {Promise<() => void>} stops the camera
 */
export async function scan(video, onText) {
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: false,
    video: { facingMode: "environment", width: { ideal: 1280 }, height: { ideal: 720 } },
  });
  // iOS Safari plays a camera inline (not full screen) only if told before it starts.
  video.setAttribute("playsinline", "");
  video.muted = true;
  video.srcObject = stream;
  await video.play();
  const canvas = document.createElement("canvas");
  const context = canvas.getContext("2d", { willReadFrequently: true });
  let stopped = false;
  let timer = 0;
  const stop = () => {
    stopped = true;
    clearTimeout(timer);
    for (const track of stream.getTracks()) track.stop();
    video.srcObject = null;
  };
  const tick = async () => {
    if (stopped) return;
    if (video.videoWidth) {
      canvas.width = video.videoWidth;
      canvas.height = video.videoHeight;
      context.drawImage(video, 0, 0);
      const frame = context.getImageData(0, 0, canvas.width, canvas.height);
      const started = performance.now();
      const text = await firstText(frame);
      performance.measure("qrgate:decode", { start: started, end: performance.now() });
      if (text && !stopped) {
        performance.mark(FRAME_MARK, { startTime: started });
        stop();
        onText(text);
        return;
      }
    }
    timer = setTimeout(tick, FRAME_INTERVAL_MS);
  };
  tick();
  return stop;
}
