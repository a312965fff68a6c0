// Drawing the page from the shared state (state.js): what is being confirmed, the status
// and its reason, the QR code to scan, the number to type and the countdown, or the
// problem that ended the wait. It only draws: what follows a status (rotating the code,
// stopping) is main.js's to decide, so the rendering can be read on its own.

import { challengePath, HttpError, serverNow } from "./api.js";
import { clear, hasMessage, messageFor, say, setText } from "./i18n.js";
import { page, TERMINAL } from "./state.js";

const byId = (id) => document.getElementById(id);
export const view = {
  scene: byId("qg-scene"),
  operation: byId("qg-operation"),
  amount: byId("qg-amount"),
  content: byId("qg-content"),
  source: byId("qg-source"),
  status: byId("qg-status"),
  reason: byId("qg-reason"),
  qr: byId("qg-qr"),
  qrImg: byId("qg-qr-img"),
  number: byId("qg-number"),
  numberValue: byId("qg-number-value"),
  countdown: byId("qg-countdown"),
  error: byId("qg-error"),
  getApp: byId("qg-get-app"),
  appLink: byId("qg-app-link"),
};

function show(element, visible) {
  element.hidden = !visible;
}

// qrgate's operation names have a message; any other is the relying party's own name,
// shown as words.
function renderOperation(operation) {
  const code = String(operation || "");
  const key = `operation.${code || "unnamed"}`;
  if (!code || hasMessage(key)) {
    say(view.operation, key);
    return;
  }
  const words = code.replace(/[_.-]+/g, " ").trim();
  setText(view.operation, words.charAt(0).toUpperCase() + words.slice(1));
}

function renderScene() {
  const scene = page.challenge.scene || {};
  renderOperation(scene.operation);
  setText(view.amount, scene.amount);
  setText(view.content, scene.content);
  if (scene.source) say(view.source, "scene.requested_from", { source: scene.source });
  else clear(view.source);
  show(view.scene, true);
}

// The image of the newest code, unless it is already on screen.
export function showQr() {
  if (page.shownSeq === page.knownSeq) return;
  page.shownSeq = page.knownSeq;
  view.qrImg.src = `${challengePath}/qr.svg?seq=${page.knownSeq}`;
}

// Returns the seconds left, on the server's clock.
export function renderCountdown() {
  const left = Math.max(0,
    Math.floor((page.challenge.expires_at * 1000 - serverNow()) / 1000));
  const minutes = Math.floor(left / 60);
  const seconds = String(left % 60).padStart(2, "0");
  say(view.countdown, "countdown.expires_in", { time: `${minutes}:${seconds}` });
  view.countdown.classList.toggle("soon", left <= 30);
  return left;
}

export function render() {
  const { challenge } = page;
  const state = challenge.state;
  const waiting = state === "pending" || state === "scanned";
  renderScene();
  view.status.dataset.state = state;
  if (state === "pending" && challenge.verifier !== "qr") say(view.status, "status.otp");
  else say(view.status, ...messageFor(`state.${state}`, "state.other", state));
  if (TERMINAL.has(state) && challenge.reason) {
    say(view.reason, ...messageFor(`reason.${challenge.reason}`, "reason.other",
      challenge.reason));
  } else {
    clear(view.reason);
  }

  const showCode = state === "pending" && challenge.verifier === "qr";
  show(view.qr, showCode);
  // Only beside a code to scan: once scanned, the user has the app.
  show(view.getApp, showCode);
  if (showCode) showQr();

  const hasNumber = waiting && challenge.number !== null && challenge.number !== undefined;
  show(view.number, hasNumber);
  if (hasNumber) view.numberValue.textContent = String(challenge.number);

  show(view.countdown, waiting);
  if (waiting) renderCountdown();
}

// A problem the server will keep giving (no such challenge, another browser): the page
// shows nothing of the challenge, only what went wrong.
export function renderProblem(error) {
  show(view.scene, false);
  show(view.qr, false);
  show(view.number, false);
  show(view.countdown, false);
  show(view.getApp, false);
  clear(view.reason);
  view.status.dataset.state = "error";
  say(view.status, "status.error");
  const code = error.code || `HTTP ${error.status}`;
  say(view.error, ...messageFor(`error.${code}`, "error.other", code));
}

// A problem that passes (a network failure, a restarting server): say so; the page retries.
export function renderRetrying(error) {
  say(view.error, error instanceof HttpError && error.status === 429
    ? "error.rate_limited" : "error.retrying");
}
