// Starts ReDoc on /redoc. It is a file of ours rather than an inline script so that the
// page's Content-Security-Policy can forbid inline script altogether.
"use strict";

(() => {
  // The server put this response's style nonce on this script's tag. ReDoc passes it to the
  // <style> elements it writes, which the page's policy allows by that nonce alone.
  const nonce = document.currentScript.nonce;
  const root = document.getElementById("redoc");
  // Resolved against the page, so a path prefix added by a reverse proxy is kept.
  const url = new URL(root.dataset.openapiUrl, document.baseURI).href;
  window.Redoc.init(url, {
    nonce,
    expandResponses: "200,201,204",
  }, root);
})();
