# syntax=docker/dockerfile:1
# Kosh: one image for every part; `docker run kosh --role api|intake|publisher|projections`.

# Build stage: a virtualenv with Kosh and its dependencies, no compilers left behind.
FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/kosh
WORKDIR /src
COPY pyproject.toml README.md ./
COPY domain ./domain
COPY infra ./infra
COPY projections ./projections
COPY consumers ./consumers
COPY api ./api
RUN /opt/kosh/bin/pip install --upgrade pip \
 && /opt/kosh/bin/pip install .

# Run stage: the virtualenv only, run as an unprivileged user.
FROM python:3.11-slim-bookworm
RUN groupadd --system --gid 10001 kosh \
 && useradd --system --uid 10001 --gid kosh --home-dir /var/lib/kosh --create-home \
      --shell /usr/sbin/nologin kosh
COPY --from=build /opt/kosh /opt/kosh
ENV PATH=/opt/kosh/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    KOSH_DATA_DIR=/var/lib/kosh \
    KOSH_API_HOST=0.0.0.0 \
    KOSH_LOG_FORMAT=json
USER kosh:kosh
WORKDIR /var/lib/kosh
VOLUME ["/var/lib/kosh"]
EXPOSE 8000
# `kosh up` is PID 1 and handles SIGTERM itself (drains the publisher and consumers).
STOPSIGNAL SIGTERM
ENTRYPOINT ["kosh", "up"]
CMD ["--role", "all"]
