# ordersvc: the service image. With DATABASE_URL it uses that PostgreSQL (see
# docker-compose.yml); without it, an embedded PostgreSQL keeps its data in /data.
#
# Production mode: it starts only with ORDERSVC_SECRET_KEY (32+ random characters, generated once and
# kept: it signs the consent links and encrypts the TOTP secrets). A secret generated inside a
# container would live in its /data, which is often not kept and never shared by replicas.
#   docker run -e ORDERSVC_SECRET_KEY=... -e ORDERSVC_PUBLIC_URL=https://... -v ordersvc-data:/data -p 8000:8000 IMAGE
FROM python:3.11-slim

COPY --from=ghcr.io/astral-sh/uv:0.9 /uv /uvx /usr/local/bin/
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    ORDERSVC_DATA_DIR=/data \
    ORDERSVC_ENVIRONMENT=production \
    PATH=/app/.venv/bin:$PATH

WORKDIR /app
# Dependencies first, so code changes do not rebuild this layer.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY alembic.ini ./
COPY alembic ./alembic
COPY src ./src
RUN uv sync --frozen --no-dev

RUN useradd --system --create-home --uid 10001 ordersvc \
    && mkdir -p /data && chown ordersvc /data
USER ordersvc
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"
CMD ["ordersvc", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
