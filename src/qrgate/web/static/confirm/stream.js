// How the page hears of changes to its challenge. The server pushes them (Server-Sent
// Events on .../events); when the stream fails, or the server ends it while its database
// is away, the page polls the status every 2 s instead and reopens the stream as soon as a
// poll is answered. What a new status or a failed read leads to is main.js's (onStatus).

import { call, challengePath } from "./api.js";
import { clear, say } from "./i18n.js";
import { page } from "./state.js";
import { view } from "./view.js";

const POLL_MS = 2000;

let stream = null;
let pollTimer = null;
// Set by main.js: what follows a new status (changed) and a failed read of one (failed).
let changed = () => {};
let failed = () => {};

export function onStatus(handlers) {
  ({ changed, failed } = handlers);
}

export function listen() {
  if (typeof EventSource !== "function") {
    startPolling();
    return;
  }
  stream = new EventSource(`${challengePath}/events`);
  stream.addEventListener("state", (event) => {
    let data;
    try {
      data = JSON.parse(event.data);
    } catch {
      return;
    }
    const { challenge } = page;
    if (page.finished || !challenge) return;
    clear(view.error);
    if (Number.isInteger(data.code_seq) && data.code_seq > page.knownSeq) {
      page.knownSeq = data.code_seq;
      // Rotated elsewhere (another tab): its expiry is unknown here.
      delete challenge.code_expires_at;
    }
    challenge.state = data.state;
    challenge.reason = data.reason;
    challenge.decided_at = data.decided_at;
    changed();
  });
  // The server ends the stream cleanly when its database is away: poll meanwhile, and
  // reopen the stream once a poll gets an answer again.
  stream.addEventListener("unavailable", () => {
    if (page.finished) return;
    closeStream();
    say(view.error, "error.retrying");
    startPolling();
  });
  stream.onopen = stopPolling;
  stream.onerror = () => {
    if (page.finished) return;
    closeStream();
    startPolling();
  };
}

function stopPolling() {
  if (pollTimer !== null) clearInterval(pollTimer);
  pollTimer = null;
}

function closeStream() {
  if (stream !== null) stream.close();
  stream = null;
}

function startPolling() {
  if (pollTimer === null && !page.finished) pollTimer = setInterval(refresh, POLL_MS);
}

// For good: the wait is over.
export function stopListening() {
  closeStream();
  stopPolling();
}

// After a failed read: poll, unless the stream is still open to bring the news.
export function pollUnlessListening() {
  if (page.challenge && stream === null) startPolling();
}

// Read the status now (a poll, a refused rotation, a code image that failed to load).
export async function refresh() {
  try {
    const status = await call("GET", "");
    if (page.finished) return;
    const expiresAt = page.challenge && page.challenge.code_expires_at;
    page.challenge = status;
    if (expiresAt !== undefined && status.code_expires_at === undefined) {
      page.challenge.code_expires_at = expiresAt;
    }
    clear(view.error);
    changed();
    if (stream === null && !page.finished) listen();
  } catch (error) {
    failed(error);
  }
}
