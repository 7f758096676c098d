# Build: docker build -t wijkbudget .   Run: see compose.yaml, or README "Docker".
FROM python:3.11-slim AS build
# The uv the Makefile pins; it installs exactly what uv.lock says.
ARG UV_VERSION=0.13.9
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
ENV UV_PROJECT_ENVIRONMENT=/opt/venv \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy
WORKDIR /src
# Dependencies first (a layer that survives code changes), then the project itself, built
# into /opt/venv as a regular (not editable) install: the runtime stage needs no /src.
# --no-dev: the same lock `make run` installs from, without the test and lint tools.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project
COPY README.md ./
COPY app ./app
COPY migrations ./migrations
RUN uv sync --frozen --no-dev --no-editable

FROM python:3.11-slim
RUN useradd --system --uid 10001 --create-home --home-dir /data wijkbudget \
    && mkdir -p /data/media && chown wijkbudget:wijkbudget /data/media
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    ENVIRONMENT=production \
    DATABASE_URL=sqlite:////data/wijkbudget.db
USER wijkbudget
WORKDIR /data
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"]
CMD ["wijkbudget", "serve", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
