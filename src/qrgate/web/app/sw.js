/*
 * qrgate's service worker: keeps the app's shell (page, styles, modules, translations,
 * icons, the vendored QR reader and CBOR codec) so the app opens without a network.
 *
 * The server fills VERSION and SHELL when it starts (qrgate/web/app_shell.py): SHELL lists
 * every file the app needs, relative to this script; VERSION is a digest of their contents.
 * A changed file changes this script, so the browser installs the new worker, which
 * precaches into a cache of its own and deletes the older ones when it activates.
 *
 * Online, shell files come from the network first and the cache only when the network
 * fails, answers with a server error, or takes longer than NETWORK_TIMEOUT_MS: this is an
 * authentication app, and a fix to its code must reach the phone on its next start, not
 * the start after (as stale-while-revalidate would do). The network copy is not written
 * into the cache: a cache holds one version whole, never a mix.
 *
 * API answers (../v1/ from the scope) are never cached nor answered from a cache: a
 * decision, a challenge or a key list must be the server's current one or fail. This worker
 * does not touch those requests at all; neither does it touch anything not in SHELL.
 */
"use strict";

const VERSION = /* qrgate:version */ "dev";
const SHELL = /* qrgate:shell */ [];
const CACHE_PREFIX = "qrgate-shell-";
const CACHE = CACHE_PREFIX + VERSION;
// On a network that takes packets but answers nothing, the browser's own timeout is minutes.
const NETWORK_TIMEOUT_MS = 4000;

const SCOPE = new URL(self.registration.scope);
const API = new URL("../v1/", SCOPE);
const START = new URL("./", SCOPE).href;
const SHELL_URLS = new Set(SHELL.map((path) => new URL(path, self.location.href).href));

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    // "reload": from the server, not the HTTP cache, so the copies are the ones VERSION names.
    await cache.addAll(SHELL.map((path) => new Request(path, { cache: "reload" })));
    // Take over at once: the new version is already complete in its cache.
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    const names = await caches.keys();
    await Promise.all(names
      .filter((name) => name.startsWith(CACHE_PREFIX) && name !== CACHE)
      .map((name) => caches.delete(name)));
    // Control the page that registered this worker, so it works offline from now on.
    await self.clients.claim();
  })());
});

self.addEventListener("fetch", (event) => {
  const key = shellKey(event.request);
  if (key !== null) {
    event.respondWith(networkFirst(event.request, key));
  }
  // Anything else, the API first of all, goes to the network as if there were no worker.
});

/**
 * The cached URL that answers `request`, or null when the worker must not answer it.
 * @param {Request} request
 * @returns {string | null}
 */
function shellKey(request) {
  if (request.method !== "GET") return null;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin || url.pathname.startsWith(API.pathname)) {
    return null;
  }
  // A query string does not change a static file; the fragment never reaches a worker.
  const bare = url.origin + url.pathname;
  if (SHELL_URLS.has(bare)) return bare;
  if (request.mode === "navigate" && bare === START + "index.html") return START;
  return null;
}

/**
 * @param {Request} request
 * @param {string} key
 * @returns {Promise<Response>}
 */
async function networkFirst(request, key) {
  try {
    const response = await withTimeout(fetch(request), NETWORK_TIMEOUT_MS);
    if (response.status < 500) return response;
    // A proxy in front of a stopped server answers 502: the cached app still works.
    return (await fromCache(key)) ?? response;
  } catch (error) {
    const cached = await fromCache(key);
    if (cached) return cached;
    throw error;
  }
}

/**
 * @param {string} key
 * @returns {Promise<Response | undefined>}
 */
async function fromCache(key) {
  const cache = await caches.open(CACHE);
  return cache.match(key);
}

/**
 * @template T
 * @param {Promise<T>} promise
 * @param {number} ms
 * @returns {Promise<T>}
 */
function withTimeout(promise, ms) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("network timeout")), ms);
    promise.then(
      (value) => { clearTimeout(timer); resolve(value); },
      (error) => { clearTimeout(timer); reject(error); },
    );
  });
}
