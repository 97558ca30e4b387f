# One image for `serve` (default), `worker` and `migrate`.
FROM python:3.11-slim-bookworm AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /srv

# Dependencies in a layer of their own: it is rebuilt only when pyproject.toml changes.
COPY pyproject.toml README.md ./
RUN mkdir app && touch app/__init__.py \
    && pip install --no-compile . \
    && pip uninstall -y rankr-ghl-sync \
    && rm -rf app

COPY app ./app
COPY migrations ./migrations
COPY alembic.ini ./
RUN pip install --no-compile --no-deps . \
    && useradd --system --uid 10001 --home-dir /srv --shell /usr/sbin/nologin sync \
    && mkdir -p /srv/data && chown sync /srv/data

USER sync
ENV DATABASE_URL=sqlite:////srv/data/rankr_ghl_sync.db PUBLIC_URL=http://127.0.0.1:8000
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"]
ENTRYPOINT ["rankr-ghl-sync"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
