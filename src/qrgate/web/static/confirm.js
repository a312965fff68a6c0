// The waiting page of a qrgate confirmation (scheme C). It binds itself to the challenge
// with the secret from the URL fragment, shows the operation, the QR code and the number
// to type on the phone, rotates the short-lived code while it waits, and shows the result
// the server pushes (Server-Sent Events, with polling when the stream fails).
"use strict";

(() => {
  const TERMINAL = new Set(["approved", "denied", "rejected", "expired"]);
  const POLL_MS = 2000;
  const RETRY_MS = 2000;
  const MIN_ROTATE_DELAY_MS = 1000;

  const STATE_TEXT = {
    pending: "Scan with the qrgate app",
    scanned: "Scanned — confirm on your phone",
    approved: "Approved",
    denied: "Denied",
    rejected: "Rejected",
    expired: "Expired",
  };
  const REASON_TEXT = {
    approved: "You approved this on your phone. You can close this page.",
    denied_by_user: "You declined this on your phone. Nothing was done.",
    scanned_twice: "The code was scanned twice, so it was cancelled for your safety. " +
      "Nothing was done.",
    number_mismatch: "The number typed on the phone did not match this page, so the request " +
      "was cancelled for your safety. Nothing was done.",
    locked: "Too many failed attempts. Nothing was done.",
    expired: "The time to confirm ran out. Go back to the site and start again.",
    cancelled: "The site cancelled this request. Nothing was done.",
  };

  const byId = (id) => document.getElementById(id);
  const root = byId("qg");
  const view = {
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
  };

  const challengeId = root.dataset.challengeId;
  const codeTtl = Number(root.dataset.codeTtl) || 30;
  // Rotate this long before a code dies, so a phone never reads a code that is about to be
  // refused; a fifth of the lifetime keeps at least 4 s between rotations at the 5 s minimum.
  const rotateLeadMs = Math.min(5, codeTtl / 5) * 1000;
  // Relative, so the page also works when qrgate is published under a path prefix.
  const api = new URL(`../v1/confirm/challenges/${challengeId}`, location.href).pathname;

  let challenge = null; // the last status document, with pushed changes merged in
  let knownSeq = 0; // the newest code rotation the page has heard of
  let shownSeq = null; // the rotation whose image is on screen
  let clockSkewMs = 0; // the server's clock minus this computer's
  let finished = false;
  let stream = null;
  let pollTimer = null;
  let rotateTimer = null;
  let rotating = false; // a rotate request is on its way
  let rotateDueAt = 0; // when the pending rotation should run, on the server's clock
  let tickTimer = null;

  class HttpError extends Error {
    constructor(status, problem) {
      super((problem && problem.detail) || `HTTP ${status}`);
      this.status = status;
      this.code = problem && problem.code;
    }
  }

  function noteServerTime(response) {
    // The countdown must follow the server's clock, not a PC clock that may be minutes off.
    // Date has whole seconds, so take the middle of the second and ignore small differences.
    const date = Date.parse(response.headers.get("Date") || "");
    if (Number.isNaN(date)) return;
    const skew = date + 500 - Date.now();
    clockSkewMs = Math.abs(skew) > 1500 ? skew : 0;
  }

  const serverNow = () => Date.now() + clockSkewMs;

  async function call(method, path, headers = {}) {
    const response = await fetch(api + path, {
      method,
      headers,
      credentials: "same-origin",
      cache: "no-store",
    });
    noteServerTime(response);
    if (!response.ok) {
      let problem = null;
      try {
        problem = await response.json();
      } catch {
        // Not a problem document (a proxy's error page): the status is all we have.
      }
      throw new HttpError(response.status, problem);
    }
    return response.status === 204 ? null : response.json();
  }

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

  function show(element, visible) {
    element.hidden = !visible;
  }

  function setText(element, text) {
    element.textContent = text || "";
    show(element, Boolean(text));
  }

  function operationTitle(operation) {
    const words = String(operation || "").replace(/[_.-]+/g, " ").trim();
    return words ? words.charAt(0).toUpperCase() + words.slice(1) : "Confirm an operation";
  }

  function renderScene() {
    const scene = challenge.scene || {};
    view.operation.textContent = operationTitle(scene.operation);
    setText(view.amount, scene.amount);
    setText(view.content, scene.content);
    setText(view.source, scene.source ? `Requested from ${scene.source}` : "");
    show(view.scene, true);
  }

  function showQr() {
    if (shownSeq === knownSeq) return;
    shownSeq = knownSeq;
    view.qrImg.src = `${api}/qr.svg?seq=${knownSeq}`;
  }

  function renderCountdown() {
    const left = Math.max(0, Math.floor((challenge.expires_at * 1000 - serverNow()) / 1000));
    const minutes = Math.floor(left / 60);
    const seconds = String(left % 60).padStart(2, "0");
    view.countdown.textContent = `Expires in ${minutes}:${seconds}`;
    view.countdown.classList.toggle("soon", left <= 30);
    return left;
  }

  function render() {
    const state = challenge.state;
    const waiting = state === "pending" || state === "scanned";
    renderScene();
    view.status.dataset.state = state;
    view.status.textContent =
      state === "pending" && challenge.verifier !== "qr"
        ? "Confirm with the one-time code on the site"
        : STATE_TEXT[state] || state;
    setText(view.reason, TERMINAL.has(state) ? REASON_TEXT[challenge.reason] ||
      (challenge.reason ? `Reason: ${challenge.reason.replace(/_/g, " ")}` : "") : "");

    const showCode = state === "pending" && challenge.verifier === "qr";
    show(view.qr, showCode);
    if (showCode) showQr();

    const hasNumber = waiting && challenge.number !== null && challenge.number !== undefined;
    show(view.number, hasNumber);
    if (hasNumber) view.numberValue.textContent = String(challenge.number);

    show(view.countdown, waiting);
    if (waiting) renderCountdown();

    if (TERMINAL.has(state)) {
      finish();
    } else if (state === "pending" && challenge.verifier === "qr") {
      ensureRotation();
    } else {
      stopRotation();
    }
  }

  // --- rotation ----------------------------------------------------------------------

  function scheduleRotation(codeExpiresAt) {
    stopRotation();
    if (codeExpiresAt >= challenge.expires_at) return; // the last code lives to the end
    const untilDue = codeExpiresAt * 1000 - serverNow() - rotateLeadMs;
    const delay = Math.max(MIN_ROTATE_DELAY_MS, untilDue);
    rotateDueAt = serverNow() + delay;
    rotateTimer = setTimeout(rotate, delay);
  }

  function ensureRotation() {
    if (rotateTimer !== null || rotating) return;
    if (typeof challenge.code_expires_at === "number") {
      scheduleRotation(challenge.code_expires_at);
    } else if (knownSeq === 0) {
      // The first code was issued when the challenge started; the server counts code
      // lifetimes from the whole second, so this errs on the early side.
      scheduleRotation(Math.floor(challenge.created_at) + codeTtl);
    } else {
      // A reloaded page cannot tell how old the code on screen is: replace it soon.
      scheduleRotation(0);
    }
  }

  function stopRotation() {
    if (rotateTimer !== null) clearTimeout(rotateTimer);
    rotateTimer = null;
  }

  async function rotate() {
    rotateTimer = null;
    if (finished || !challenge || challenge.state !== "pending") return;
    const from = knownSeq;
    rotating = true;
    let rotated;
    try {
      rotated = await call("POST", "/rotate");
    } catch (error) {
      rotating = false;
      if (error instanceof HttpError && error.status < 500 && error.status !== 429) {
        // Scanned, decided or expired in the meantime: the status tells which.
        await refresh();
      } else if (!finished) {
        rotateTimer = setTimeout(rotate, RETRY_MS);
      }
      return;
    }
    rotating = false;
    if (finished) return;
    knownSeq = Math.max(knownSeq, from + 1);
    challenge.code_expires_at = rotated.code_expires_at;
    if (challenge.state === "pending") {
      showQr();
      scheduleRotation(rotated.code_expires_at);
    }
  }

  // --- results: pushed, or polled when the stream fails ------------------------------

  function listen() {
    if (typeof EventSource !== "function") {
      startPolling();
      return;
    }
    stream = new EventSource(`${api}/events`);
    stream.addEventListener("state", (event) => {
      let data;
      try {
        data = JSON.parse(event.data);
      } catch {
        return;
      }
      if (finished || !challenge) return;
      view.error.hidden = true;
      if (Number.isInteger(data.code_seq) && data.code_seq > knownSeq) {
        knownSeq = data.code_seq;
        // Rotated elsewhere (another tab): its expiry is unknown here.
        delete challenge.code_expires_at;
      }
      challenge.state = data.state;
      challenge.reason = data.reason;
      challenge.decided_at = data.decided_at;
      render();
    });
    // The server ends the stream cleanly when its database is away: poll meanwhile, and
    // reopen the stream once a poll gets an answer again.
    stream.addEventListener("unavailable", () => {
      if (finished) return;
      closeStream();
      setText(view.error, "Cannot reach the server right now; still trying…");
      startPolling();
    });
    stream.onopen = stopPolling;
    stream.onerror = () => {
      if (finished) return;
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
    if (pollTimer === null && !finished) pollTimer = setInterval(refresh, POLL_MS);
  }

  async function refresh() {
    try {
      const status = await call("GET", "");
      if (finished) return;
      const expiresAt = challenge && challenge.code_expires_at;
      challenge = status;
      if (expiresAt !== undefined && status.code_expires_at === undefined) {
        challenge.code_expires_at = expiresAt;
      }
      view.error.hidden = true;
      render();
      if (stream === null && !finished) listen();
    } catch (error) {
      failed(error);
    }
  }

  function finish() {
    finished = true;
    stopRotation();
    closeStream();
    if (pollTimer !== null) clearInterval(pollTimer);
    if (tickTimer !== null) clearInterval(tickTimer);
    pollTimer = tickTimer = null;
  }

  function failed(error) {
    if (!isTransient(error)) {
      finish();
      show(view.scene, false);
      show(view.qr, false);
      show(view.number, false);
      show(view.countdown, false);
      show(view.reason, false);
      view.status.dataset.state = "error";
      view.status.textContent = "This confirmation cannot be shown here";
      setText(view.error, error.status === 404
        ? "This confirmation does not exist or has ended. Go back to the site and start again."
        : "Open this page only through the link the site gave you, in the same browser. " +
          "Go back to the site and start again.");
      return;
    }
    // A network failure or a restarting server passes: say so and keep trying.
    setText(view.error, "Cannot reach the server right now; still trying…");
    if (challenge && stream === null) startPolling();
  }

  function isTransient(error) {
    return !(error instanceof HttpError) || error.status >= 500 || error.status === 429;
  }

  async function start() {
    try {
      if (browserToken) {
        await call("POST", "/browser-session", { "Qrgate-Browser-Token": browserToken });
        browserToken = null;
      }
      challenge = await call("GET", "");
    } catch (error) {
      failed(error);
      if (isTransient(error)) setTimeout(start, RETRY_MS);
      return;
    }
    view.error.hidden = true;
    render();
    if (finished) return;
    tickTimer = setInterval(() => {
      // At zero the server decides whether the challenge has expired: ask it, once a tick.
      if (challenge && !finished && renderCountdown() === 0) refresh();
    }, 1000);
    listen();
  }

  view.qrImg.addEventListener("error", () => {
    // The code may have just been scanned or rotated: the status tells which.
    if (!finished && challenge) refresh();
  });
  document.addEventListener("visibilitychange", () => {
    // Browsers slow the timers of hidden tabs to a minute or more: a tab brought back
    // must not keep showing a code that died while it was hidden.
    if (document.visibilityState !== "visible" || finished || !challenge) return;
    if (rotateTimer !== null && rotateDueAt <= serverNow()) {
      stopRotation();
      rotate();
    }
  });

  start();
})();
