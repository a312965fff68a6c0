// The waiting page of a qrgate confirmation (scheme C). It binds itself to the challenge
// with the secret from the URL fragment, shows the operation, the QR code and the number
// to type on the phone, rotates the short-lived code while it waits, and shows the result
// the server pushes (Server-Sent Events, with polling when the stream fails). Its texts
// come from the catalogs in static/i18n, in the browser's language or the one picked.
"use strict";

(() => {
  const TERMINAL = new Set(["approved", "denied", "rejected", "expired"]);
  const POLL_MS = 2000;
  const RETRY_MS = 2000;
  const MIN_ROTATE_DELAY_MS = 1000;
  const LANGUAGES = ["en", "zh-CN"];
  const LANGUAGE_KEY = "qrgate-confirm-language";

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
    getApp: byId("qg-get-app"),
    appLink: byId("qg-app-link"),
    language: byId("qg-lang"),
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

  // --- language ------------------------------------------------------------------------

  // The catalog in use (key -> text), null until one has loaded. No English copy ships in
  // this file: it would be a second confirm.en.json to keep in step. Until a catalog is in,
  // the page shows the English of its HTML and renders nothing else; if none loads (the
  // file lost in a deployment, a network failing mid-load), dynamic texts fall back to
  // their keys as words (see t), so the page still shows the code and the result.
  let messages = null;
  const catalogs = new Map(); // language -> the promise of its catalog
  // The elements whose text the script said, with what it said (a key and its values), so
  // a change of language says them again.
  const spoken = new Map();
  let languageRequest = 0; // the newest choice: a slower, older load must not win

  function savedLanguage() {
    try {
      return localStorage.getItem(LANGUAGE_KEY);
    } catch {
      return null; // storage disabled (a privacy setting): follow the browser
    }
  }

  function saveLanguage(language) {
    try {
      localStorage.setItem(LANGUAGE_KEY, language);
    } catch {
      // Not remembered then; the choice still holds on this page.
    }
  }

  // The first of the browser's languages that the page has: any Chinese is zh-CN (the one
  // Chinese catalog), any English en; a browser asking for neither gets English.
  function browserLanguage() {
    const tags = navigator.languages && navigator.languages.length
      ? navigator.languages : [navigator.language || ""];
    for (const tag of tags) {
      const base = String(tag).toLowerCase().split("-")[0];
      if (base === "zh") return "zh-CN";
      if (base === "en") return "en";
    }
    return "en";
  }

  function preferredLanguage() {
    const saved = savedLanguage();
    return LANGUAGES.includes(saved) ? saved : browserLanguage();
  }

  function loadCatalog(language) {
    if (!catalogs.has(language)) {
      // Same origin and relative, like the page's other files (connect-src 'self').
      const url = new URL(`../static/i18n/confirm.${language}.json`, location.href);
      const loading = fetch(url, { credentials: "same-origin" }).then((response) => {
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        return response.json();
      });
      loading.catch(() => catalogs.delete(language)); // a later switch may try again
      catalogs.set(language, loading);
    }
    return catalogs.get(language);
  }

  // Use ``language``, or English when its catalog does not load; never fails.
  async function useLanguage(language) {
    const request = ++languageRequest;
    for (const candidate of new Set([language, "en"])) {
      let catalog;
      try {
        catalog = await loadCatalog(candidate);
      } catch {
        continue;
      }
      if (request !== languageRequest) return;
      messages = catalog;
      applyLanguage(candidate);
      return;
    }
  }

  function applyLanguage(language) {
    document.documentElement.lang = language;
    view.language.value = language;
    for (const element of document.querySelectorAll("[data-i18n]")) {
      element.textContent = t(element.dataset.i18n);
    }
    for (const element of document.querySelectorAll("[data-i18n-alt]")) {
      element.alt = t(element.dataset.i18nAlt);
    }
    for (const element of document.querySelectorAll("[data-i18n-aria-label]")) {
      element.setAttribute("aria-label", t(element.dataset.i18nAriaLabel));
    }
    // After the template's texts: an element the script has spoken for (the status) keeps
    // what it said, now in this language.
    for (const [element, [key, values]] of spoken) element.textContent = t(key, values);
  }

  // The text of ``key`` with its {name} placeholders filled from ``values``. Without a
  // catalog: the key's last part and the values as words ("reason.denied_by_user" says
  // "denied by user"), plain but still telling what happened.
  function t(key, values = {}) {
    if (messages === null) {
      const words = key.slice(key.lastIndexOf(".") + 1).replace(/_/g, " ");
      return [words, ...Object.values(values)].join(" ");
    }
    const text = Object.hasOwn(messages, key) ? messages[key] : key;
    return text.replace(/\{(\w+)\}/g, (placeholder, name) =>
      Object.hasOwn(values, name) ? String(values[name]) : placeholder);
  }

  // A code's own message when the catalog has one, else its family's ``otherKey`` message,
  // which shows the code (a reason added to the server after the catalogs were written).
  function messageFor(key, otherKey, code) {
    return messages === null || Object.hasOwn(messages, key) ? [key, {}] : [otherKey, { code }];
  }

  function say(element, key, values = {}) {
    spoken.set(element, [key, values]);
    element.textContent = t(key, values);
    show(element, true);
  }

  function clear(element) {
    spoken.delete(element);
    element.textContent = "";
    show(element, false);
  }

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

  // The relying party's own words (amount, content): shown as they are, in any language.
  function setText(element, text) {
    spoken.delete(element);
    element.textContent = text || "";
    show(element, Boolean(text));
  }

  // qrgate's operation names have a message; any other is the relying party's own name,
  // shown as words.
  function renderOperation(operation) {
    const code = String(operation || "");
    const key = `operation.${code || "unnamed"}`;
    if (!code || (messages !== null && Object.hasOwn(messages, key))) {
      say(view.operation, key);
      return;
    }
    const words = code.replace(/[_.-]+/g, " ").trim();
    setText(view.operation, words.charAt(0).toUpperCase() + words.slice(1));
  }

  function renderScene() {
    const scene = challenge.scene || {};
    renderOperation(scene.operation);
    setText(view.amount, scene.amount);
    setText(view.content, scene.content);
    if (scene.source) say(view.source, "scene.requested_from", { source: scene.source });
    else clear(view.source);
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
    say(view.countdown, "countdown.expires_in", { time: `${minutes}:${seconds}` });
    view.countdown.classList.toggle("soon", left <= 30);
    return left;
  }

  function render() {
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
      clear(view.error);
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
      say(view.error, "error.retrying");
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
      clear(view.error);
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
      show(view.getApp, false);
      clear(view.reason);
      view.status.dataset.state = "error";
      say(view.status, "status.error");
      const code = error.code || `HTTP ${error.status}`;
      say(view.error, ...messageFor(`error.${code}`, "error.other", code));
      return;
    }
    // A network failure or a restarting server passes: say so and keep trying.
    say(view.error, error instanceof HttpError && error.status === 429
      ? "error.rate_limited" : "error.retrying");
    if (challenge && stream === null) startPolling();
  }

  function isTransient(error) {
    return !(error instanceof HttpError) || error.status >= 500 || error.status === 429;
  }

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
    challenge = status;
    clear(view.error);
    render();
    if (finished) return;
    tickTimer = setInterval(() => {
      // At zero the server decides whether the challenge has expired: ask it, once a tick.
      if (challenge && !finished && renderCountdown() === 0) refresh();
    }, 1000);
    listen();
  }

  view.language.addEventListener("change", () => {
    saveLanguage(view.language.value);
    useLanguage(view.language.value);
  });
  // The address in full, to type on the phone; the link itself stays relative.
  view.appLink.textContent = new URL("../app/", location.href).href;
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
