# eventapi: `docker build -t eventapi .`, or `docker compose up` (compose.yaml) for the API
# with MongoDB and Redis. Settings are the EVENTAPI_* environment variables (README.md).
# tests/deploy/ checks this file and runs the build stage's steps without docker.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# Build: a wheel of the project, installed with the dependency versions pinned in
# constraints.txt into a virtualenv that the runtime stage copies as it is.
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY src ./src
# Binary wheels only: the slim image has no compiler, so a dependency without a wheel for
# this platform fails here, not halfway through a source build.
RUN pip wheel --no-deps --wheel-dir /wheels . \
 && python -m venv /opt/venv \
 && /opt/venv/bin/pip install --only-binary=:all: -c constraints.txt /wheels/eventapi-*.whl

# Runtime: the same slim Python, the virtualenv, no build tools, not root.
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 eventapi \
 && useradd --system --uid 10001 --gid eventapi --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin eventapi \
 && install -d -o eventapi -g eventapi /app /app/data
COPY --from=build /opt/venv /opt/venv
# EVENTAPI_WORKERS is read by the entry point below only (--workers; more than 1 needs
# EVENTAPI_CACHE_URL=redis://...). The default database is SQLite in /app/data: mount a
# volume there, or set EVENTAPI_DATABASE_URL=mongodb://... as compose.yaml does.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    EVENTAPI_ENV=production \
    EVENTAPI_PORT=8000 \
    EVENTAPI_WORKERS=1
WORKDIR /app
USER 10001:10001
EXPOSE 8000
# The slim image has no curl: Python's urllib, which fails on anything but a 2xx (/health
# is 503 when the database does not answer, 200 when it does, even with Redis down).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ['EVENTAPI_PORT'], timeout=4)"]
# exec: the shell gives way to the server, which gets `docker stop`'s SIGTERM. Arguments after
# `docker run IMAGE` are appended to `eventapi serve`'s. Change the port with EVENTAPI_PORT,
# not --port: the health check reads it too.
ENTRYPOINT ["/bin/sh", "-c", "exec eventapi serve --host 0.0.0.0 --workers \"$EVENTAPI_WORKERS\" \"$@\"", "eventapi"]
