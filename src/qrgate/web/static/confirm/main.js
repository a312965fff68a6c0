// The waiting page of a qrgate confirmation (scheme C). It binds itself to the challenge
// with the secret from the URL fragment, shows the operation, the QR code and the number
// to type on the phone, rotates the short-lived code while it waits, and shows the result
// the server pushes, until a final state or a problem ends the wait. Each job has its
// module next to this one (api, i18n, view, stream, rotation, with the shared state in
// state.js); this one starts the page, wires them together and decides what follows a
// status: render it, then keep the code rotating, or stop.

import { call, isTransient, RETRY_MS } from "./api.js";
import { clear, picker, preferredLanguage, saveLanguage, useLanguage } from "./i18n.js";
import { ensureRotation, rotateIfOverdue, stopRotation } from "./rotation.js";
import { page, TERMINAL } from "./state.js";
import { listen, onStatus, pollUnlessListening, refresh, stopListening } from "./stream.js";
import { render, renderCountdown, renderProblem, renderRetrying, view } from "./view.js";
import "./offline.js"; // the "Phone offline?" form: it follows the status by itself

let tickTimer = null;

function takeTokenFromFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get("bt");
  if (token !== null) {
    // Out of the address bar and the history at once: a shared screen, a bookmark or a
    // copied link must not carry the secret that the result is bound to.
    history.replaceState(history.state, "", location.pathname + location.search);
  }
  return token;
}

// Kept until the server has set the cookie, so a failed first try can be repeated.
// Without one (a reload) the cookie set the first time is all the page needs.
let browserToken = takeTokenFromFragment();

function update() {
  render();
  const { state, verifier } = page.challenge;
  if (TERMINAL.has(state)) {
    finish();
  } else if (state === "pending" && verifier === "qr") {
    ensureRotation();
  } else {
    stopRotation();
  }
}

function finish() {
  page.finished = true;
  stopRotation();
  stopListening();
  if (tickTimer !== null) clearInterval(tickTimer);
  tickTimer = null;
}

function failed(error) {
  if (!isTransient(error)) {
    finish();
    renderProblem(error);
    return;
  }
  // A network failure or a restarting server passes: say so and keep trying.
  renderRetrying(error);
  pollUnlessListening();
}

onStatus({ changed: update, failed });

// The catalog loads while the page binds itself and reads the status, so the two waits
// overlap; the page renders once both are done, in one language from the start.
const languageReady = useLanguage(preferredLanguage());

async function start() {
  let status;
  try {
    if (browserToken) {
      await call("POST", "/browser-session", { "Qrgate-Browser-Token": browserToken });
      browserToken = null;
    }
    status = await call("GET", "");
  } catch (error) {
    await languageReady;
    failed(error);
    if (isTransient(error)) setTimeout(start, RETRY_MS);
    return;
  }
  await languageReady;
  page.challenge = status;
  clear(view.error);
  update();
  if (page.finished) return;
  tickTimer = setInterval(() => {
    // At zero the server decides whether the challenge has expired: ask it, once a tick.
    if (page.challenge && !page.finished && renderCountdown() === 0) refresh();
  }, 1000);
  listen();
}

picker.addEventListener("change", () => {
  saveLanguage(picker.value);
  useLanguage(picker.value);
});
// The address in full, to type on the phone; the link itself stays relative.
view.appLink.textContent = new URL("../app/", location.href).href;
view.qrImg.addEventListener("error", () => {
  // The code may have just been scanned or rotated: the status tells which.
  if (!page.finished && page.challenge) refresh();
});
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState !== "visible" || page.finished || !page.challenge) return;
  rotateIfOverdue();
});

start();
