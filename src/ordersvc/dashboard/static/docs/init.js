// The API reference at /docs: Swagger UI, served by ordersvc itself (no CDN), on the service's
// own OpenAPI document. A separate file, so that the page's Content-Security-Policy needs no
// inline script.
window.addEventListener("load", () => {
  window.ui = SwaggerUIBundle({
    url: "openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    tryItOutEnabled: false,
    persistAuthorization: false,
  });
});
