# syntax=docker/dockerfile:1.7
# Build: a wheel of the project and its dependencies in a virtual environment.
FROM python:3.11.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
COPY pyproject.toml README.md ./
COPY api ./api
COPY domain ./domain
COPY notifications ./notifications
RUN /opt/venv/bin/pip install --upgrade pip \
 && /opt/venv/bin/pip install .

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
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2).status == 200 else 1)"
# LOYALTY_DATABASE_URL and LOYALTY_JWT_SECRET come from the deployment.
CMD ["loyalty", "serve", "--host", "0.0.0.0", "--port", "8000"]
