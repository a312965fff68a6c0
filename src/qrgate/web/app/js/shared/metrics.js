// Timings a person can read in the browser's performance panel (and the app's browser
// tests report): from the camera frame that held a code to its verified screen.
export const FRAME_MARK = "qrgate:frame";

/** Measure from the last decoded frame to now; nothing after a paste. The frame's mark
 * goes with the `last` measure, so a later screen never measures from an old frame. */
export function measureFromFrame(name = "qrgate:frame-to-screen", last = true) {
  if (!performance.getEntriesByName(FRAME_MARK, "mark").length) return;
  performance.measure(name, FRAME_MARK);
  if (last) performance.clearMarks(FRAME_MARK);
}
