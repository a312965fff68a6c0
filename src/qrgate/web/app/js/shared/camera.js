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
const ONE_CODE = { formats: ["QRCode"], tryHarder: true, maxNumberOfSymbols: 1 };
// A printed grid card shows 30 codes at once, a printed page 90: the screen picks one.
const EVERY_CODE = { ...ONE_CODE, maxNumberOfSymbols: 255 };
// A frame every ~100 ms is smooth enough to aim with and leaves the phone's CPU idle half
// the time; decoding a 720p frame takes 20-60 ms.
const FRAME_INTERVAL_MS = 100;

prepareZXingModule({
  overrides: { locateFile: (path, prefix) => (path.endsWith(".wasm") ? WASM_URL : prefix + path) },
});

/** Why the camera did not start, as the catalog key of a message for the user. */
export function cameraProblem(error) {
  if (!window.isSecureContext) return "camera.insecure";
  if (error && error.name === "NotAllowedError") return "camera.denied";
  if (error && (error.name === "NotFoundError" || error.name === "OverconstrainedError")) {
    return "camera.none";
  }
  return "camera.failed";
}

/** @returns {Promise<string[]>} */
async function texts(input, options) {
  return (await readBarcodes(input, options))
    .filter((found) => found.isValid).map((found) => found.text);
}

/** The QR text in an image file (photo, screenshot), or null. */
export async function readFile(file) {
  const [text = null] = await texts(file, ONE_CODE);
  return text;
}

/** Every QR text in an image file. */
export function readFileCodes(file) {
  return texts(file, EVERY_CODE);
}

/**
 * Show the back camera in `video` and call `onText(text)` once for the first code read.
 * Each decode is recorded as a performance measure "qrgate:decode"; the frame that gave
 * the code is marked "qrgate:frame" so a screen can measure frame-to-screen time.
 * @returns {Promise<() => void>} stops the camera
 */
export function scan(video, onText) {
  return watch(video, ONE_CODE, ([text]) => text ?? null, onText);
}

/**
 * As scan, reading every code of each frame: `pick(texts)` returns what the screen wants
 * of them, or null to look at the next frame; `onPicked` gets it once, the camera stopped.
 * @template T
 * @param {HTMLVideoElement} video
 * @param {(texts: string[]) => T | null} pick
 * @param {(picked: T) => void} onPicked
 * @returns {Promise<() => void>} stops the camera
 */
export function scanCodes(video, pick, onPicked) {
  return watch(video, EVERY_CODE, pick, onPicked);
}

async function watch(video, options, pick, onPicked) {
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
      const found = await texts(frame, options);
      performance.measure("qrgate:decode", { start: started, end: performance.now() });
      const picked = found.length && !stopped ? pick(found) ?? null : null;
      if (picked !== null) {
        performance.mark(FRAME_MARK, { startTime: started });
        stop();
        onPicked(picked);
        return;
      }
    }
    timer = setTimeout(tick, FRAME_INTERVAL_MS);
  };
  tick();
  return stop;
}
