// The rotation of the short-lived code on screen. Each code lives code_ttl seconds (the
// page's data-code-ttl), so the page asks for the next one (POST .../rotate) a little
// before the one shown dies, timed on the server's clock. A refused rotation means the
// challenge moved on (scanned, decided, expired): the status then says where to.

import { call, isTransient, RETRY_MS, serverNow } from "./api.js";
import { page } from "./state.js";
import { refresh } from "./stream.js";
import { showQr } from "./view.js";

const MIN_ROTATE_DELAY_MS = 1000;
const codeTtl = Number(document.getElementById("qg").dataset.codeTtl) || 30;
// Rotate this long before a code dies, so a phone never reads a code that is about to be
// refused; a fifth of the lifetime keeps at least 4 s between rotations at the 5 s minimum.
const rotateLeadMs = Math.min(5, codeTtl / 5) * 1000;

let rotateTimer = null;
let rotating = false; // a rotate request is on its way
let rotateDueAt = 0; // when the pending rotation should run, on the server's clock

function scheduleRotation(codeExpiresAt) {
  stopRotation();
  if (codeExpiresAt >= page.challenge.expires_at) return; // the last code lives to the end
  const untilDue = codeExpiresAt * 1000 - serverNow() - rotateLeadMs;
  const delay = Math.max(MIN_ROTATE_DELAY_MS, untilDue);
  rotateDueAt = serverNow() + delay;
  rotateTimer = setTimeout(rotate, delay);
}

// Have a rotation scheduled for the code on screen, unless one is already.
export function ensureRotation() {
  if (rotateTimer !== null || rotating) return;
  const { challenge } = page;
  if (typeof challenge.code_expires_at === "number") {
    scheduleRotation(challenge.code_expires_at);
  } else if (page.knownSeq === 0) {
    // The first code was issued when the challenge started; the server counts code
    // lifetimes from the whole second, so this errs on the early side.
    scheduleRotation(Math.floor(challenge.created_at) + codeTtl);
  } else {
    // A reloaded page cannot tell how old the code on screen is: replace it soon.
    scheduleRotation(0);
  }
}

export function stopRotation() {
  if (rotateTimer !== null) clearTimeout(rotateTimer);
  rotateTimer = null;
}

async function rotate() {
  rotateTimer = null;
  if (page.finished || !page.challenge || page.challenge.state !== "pending") return;
  const from = page.knownSeq;
  rotating = true;
  let rotated;
  try {
    rotated = await call("POST", "/rotate");
  } catch (error) {
    rotating = false;
    if (!isTransient(error)) {
      // Scanned, decided or expired in the meantime: the status tells which.
      await refresh();
    } else if (!page.finished) {
      rotateTimer = setTimeout(rotate, RETRY_MS);
    }
    return;
  }
  rotating = false;
  if (page.finished) return;
  page.knownSeq = Math.max(page.knownSeq, from + 1);
  page.challenge.code_expires_at = rotated.code_expires_at;
  if (page.challenge.state === "pending") {
    showQr();
    scheduleRotation(rotated.code_expires_at);
  }
}

// Browsers slow the timers of hidden tabs to a minute or more: a tab brought back must not
// keep showing a code that died while it was hidden.
export function rotateIfOverdue() {
  if (rotateTimer !== null && rotateDueAt <= serverNow()) {
    stopRotation();
    rotate();
  }
}
