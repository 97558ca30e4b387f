# One image for `serve` (default), `worker`, `migrate` and every other command. The SQLite default
# lives in /srv/data: mount one volume there for all of them (README, "Running the container").
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /srv

# Dependencies in a layer of their own, rebuilt only when the lock changes: exactly the pinned
# versions, each checked against its hash, wheels only (no build step fetching unpinned tools).
# Every module is compiled here, in one pass over the standard library and the packages (so pip need
# not compile what it installs): the running user cannot write bytecode, so without it each process
# (serve, worker, every CLI command) would compile all its imports from source at start, about three
# times the start-up time.
COPY requirements.lock ./
RUN pip install --no-compile --require-hashes --only-binary :all: -r requirements.lock \
    && rm requirements.lock \
    && python -m compileall -q /usr/local/lib/python3.11

# The source runs from /srv (so the top-level migrations/ sits beside the app package).
COPY alembic.ini ./
COPY migrations ./migrations
COPY app ./app
RUN python -m compileall -q app \
    && groupadd --system --gid 10001 rankr \
    && useradd --system --uid 10001 --gid 10001 --home-dir /srv --shell /usr/sbin/nologin rankr \
    && mkdir -p /srv/data && chown rankr:rankr /srv/data

# Numeric, so Kubernetes' runAsNonRoot can check it.
USER 10001:10001
ENV PYTHONPATH=/srv DATABASE_URL=sqlite:////srv/data/rankr_ghl_sync.db
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]
ENTRYPOINT ["python", "-m", "app"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
