// Starts Swagger UI on /api/openapi.json (a file of its own: the CSP allows no inline script).
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  window.ui = window.SwaggerUIBundle({
    url: root.getAttribute("data-spec-url"),
    domNode: root,
    deepLinking: true,
    // The browser's session cookie authenticates "Try it out"; send the CSRF token it needs.
    requestInterceptor: function (request) {
      var token = window.smCsrfToken;
      if (token && request.method && request.method.toUpperCase() !== "GET") {
        request.headers["X-CSRFToken"] = token;
      }
      return request;
    },
  });
  fetch("/api/auth/csrf", { credentials: "same-origin" })
    .then(function (response) { return response.ok ? response.json() : {}; })
    .then(function (body) { window.smCsrfToken = body.csrf_token; })
    .catch(function () {});
})();
