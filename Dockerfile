# Improvement Dash in a container: `dash serve` on port 8000 as a non-root user.
# Follows docs/DEPLOYMENT.md ("Docker"). Build:  docker build -t improvement-dash .
# Run:   docker run -p 127.0.0.1:8000:8000 -v dash-data:/data --env-file /etc/dash/dash.env improvement-dash
FROM python:3.11-slim

# FORWARDED_ALLOW_IPS: uvicorn trusts X-Forwarded-Proto from the reverse proxy in front of
# the container (publish the port on 127.0.0.1 only, as below, so nothing else reaches it).
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MPLCONFIGDIR=/data/.matplotlib \
    FORWARDED_ALLOW_IPS=*

# pg_dump/pg_restore for `dash backup` on PostgreSQL.
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY dash ./dash
COPY bots ./bots
COPY scheduler ./scheduler
COPY curricula ./curricula
RUN pip install ".[postgres]"

RUN useradd --system --create-home --home-dir /data --shell /usr/sbin/nologin dash \
    && mkdir -p /data/backups /data/reports \
    && chown -R dash:dash /data
USER dash
# SQLite (the default ./dash.db), backups and reports live in the /data volume.
WORKDIR /data
VOLUME ["/data"]
ENV DASH_REPORT_DIR=/data/reports

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]

CMD ["dash", "serve", "--host", "0.0.0.0", "--port", "8000"]
