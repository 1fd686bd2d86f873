"""Operating the service: health and readiness, metrics, request context and limits, rate limits."""
