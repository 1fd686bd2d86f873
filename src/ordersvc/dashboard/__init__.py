"""The customer dashboard: a single-page app built from `web/` into `static/`, served at `/`."""
