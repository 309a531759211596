# syntax=docker/dockerfile:1.7
# Build: the project and its dependencies in a virtual environment, from wheels only
# (--only-binary: nothing is compiled, so the build needs no compiler either). No
# `embedded` extra: production runs against LOYALTY_DATABASE_URL, never pgserver.
FROM python:3.11.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY pyproject.toml README.md ./
COPY api ./api
COPY domain ./domain
COPY notifications ./notifications
RUN /opt/venv/bin/pip install --upgrade pip \
 && /opt/venv/bin/pip install --only-binary=:all: . \
 && ! /opt/venv/bin/pip show pgserver >/dev/null 2>&1

# Run: only the virtual environment, as an unprivileged user.
FROM python:3.11.11-slim-bookworm AS run
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    LOYALTY_ENV=production \
    LOYALTY_HOME=/var/lib/loyalty
RUN groupadd --system --gid 10001 loyalty \
 && useradd --system --uid 10001 --gid loyalty --home-dir /var/lib/loyalty --create-home loyalty
COPY --from=build /opt/venv /opt/venv
USER loyalty:loyalty
WORKDIR /var/lib/loyalty
EXPOSE 8000
# SIGTERM (docker stop) stops the server gracefully, within 10 s of open requests.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2).status == 200 else 1)"
# LOYALTY_DATABASE_URL, LOYALTY_JWT_SECRET and LOYALTY_PROGRAM come from the deployment.
CMD ["loyalty", "serve", "--host", "0.0.0.0", "--port", "8000"]
