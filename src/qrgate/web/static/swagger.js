// Starts Swagger UI on /docs. It is a file of ours rather than an inline script so that the
// page's Content-Security-Policy can forbid inline script altogether.
"use strict";

(() => {
  const root = document.getElementById("swagger-ui");
  // Resolved against the page, so a path prefix added by a reverse proxy is kept.
  const url = new URL(root.dataset.openapiUrl, document.baseURI).href;
  const SwaggerUIBundle = window.SwaggerUIBundle;
  SwaggerUIBundle({
    url,
    domNode: root,
    presets: [SwaggerUIBundle.presets.apis],
    // BaseLayout has no top bar with a free "explore" field: the page shows this API only.
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    // The validator badge would send our OpenAPI document to validator.swagger.io.
    validatorUrl: null,
    // A link with ?url=... must not turn this page into a viewer of someone else's document.
    queryConfigEnabled: false,
    // An API key typed into "Authorize" must not outlive the tab in localStorage.
    persistAuthorization: false,
  });
})();
