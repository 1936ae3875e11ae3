// docs.js - starts Swagger UI on the API documentation page (/api/docs/).
//
// The document comes from this origin (/api/v1/openapi.json, made from
// openapi/openapi.yaml at build time). Nothing else is fetched: no validator
// badge (validatorUrl null), no spec URL taken from the page's query string
// (queryConfigEnabled false: a link with ?url= must not show another
// document under this origin), and the Content-Security-Policy allows only
// this origin anyway. "Try it out" sends requests to this same API with the
// bearer token entered under "Authorize"; the token stays in this page's
// memory (persistAuthorization false), never in the browser's storage.
"use strict";

window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/api/v1/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    queryConfigEnabled: false,
    validatorUrl: null,
    persistAuthorization: false,
    withCredentials: false,
    displayOperationId: false,
    docExpansion: "list",
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
