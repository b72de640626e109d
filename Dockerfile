# syntax=docker/dockerfile:1
# Stage 1: the dashboard (Svelte + Vite) -> /frontend/dist
FROM node:20-bookworm-slim AS frontend
WORKDIR /frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
RUN npm run build

# Stage 2: the Python package, built into a virtualenv
FROM python:3.11-slim-bookworm AS python
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/cidash
COPY pyproject.toml README.md ./src/
COPY src/ ./src/src/
RUN /opt/cidash/bin/pip install ./src

# Stage 3: slim runtime, non-root, with a HEALTHCHECK
FROM python:3.11-slim-bookworm
RUN useradd --system --create-home --home-dir /var/lib/cidash --uid 10001 cidash
COPY --from=python /opt/cidash /opt/cidash
COPY migrations/ /opt/cidash/migrations/
COPY --from=frontend /frontend/dist/ /opt/cidash/frontend/
ENV PATH=/opt/cidash/bin:$PATH \
    CIDASH_MIGRATIONS_DIR=/opt/cidash/migrations \
    CIDASH_FRONTEND_DIR=/opt/cidash/frontend \
    CIDASH_CONFIG=/etc/cidash/cidash.toml \
    CIDASH_DATABASE_URL=sqlite+aiosqlite:////var/lib/cidash/cidash.db \
    CIDASH_API__HOST=0.0.0.0 \
    CIDASH_API__PORT=8080 \
    PYTHONUNBUFFERED=1
USER cidash
WORKDIR /var/lib/cidash
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status != 200)"
ENTRYPOINT ["cidash"]
CMD ["serve"]
