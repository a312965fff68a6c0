/**
 * Registers the app's service worker (sw.js, which keeps the app usable offline).
 *
 * The worker's URL is found from this module's own URL, not the page's, so it is the same
 * whichever page imports this and under whatever path prefix a proxy publishes the app.
 *
 * Browsers offer service workers only in a secure context (https, or localhost): on plain
 * http from a phone there is none, and the app then simply needs the network.
 *
 * @returns {Promise<ServiceWorkerRegistration | null>} the registration, or null when the
 *   browser offers no service worker here or registering failed (logged as a warning).
 */
export async function registerServiceWorker() {
  if (!("serviceWorker" in navigator)) return null;
  const script = new URL("../../sw.js", import.meta.url);
  try {
    return await navigator.serviceWorker.register(script, {
      scope: new URL("./", script).pathname,
      // Check sw.js itself with the server on every update check, never the HTTP cache.
      updateViaCache: "none",
    });
  } catch (error) {
    console.warn("qrgate: the offline mode is not available:", error);
    return null;
  }
}
