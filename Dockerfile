# syntax=docker/dockerfile:1
#
#   docker build -t wapulse .
#   docker run -d --name wapulse -p 3001:3001 -v wapulse-data:/var/lib/wapulse \
#     -e INGEST_TOKEN="$(openssl rand -hex 32)" wapulse
#
# The container listens on 0.0.0.0:3001, and wapulse refuses to listen beyond
# loopback without INGEST_TOKEN: the run fails with a message naming it
# until one is given. Settings: WAPULSE_* and the tokens in the
# environment, or a file with `-v ./wapulse.toml:/etc/wapulse/wapulse.toml:ro
# -e WAPULSE_CONFIG=/etc/wapulse/wapulse.toml` (README "Configuration").
# Stop with `docker stop -t 60`: SIGTERM writes a final snapshot.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# /version shows this number; the commit shows `unknown`, since .git stays
# out of the build context (.dockerignore).
ARG WAPULSE_BUILD_NUMBER=0
ENV WAPULSE_BUILD_NUMBER=${WAPULSE_BUILD_NUMBER}
# The cache mounts keep the registry and target/ between builds; the binary
# is copied out in the same step because a cache mount is not in the layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p wapulse \
    && install -D -m 0755 target/release/wapulse /out/wapulse

FROM debian:bookworm-slim
# Debian's bookworm versions are the pin (security updates keep coming in
# under the same suite), hence no version on ca-certificates.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 wapulse \
    && useradd --system --no-log-init --uid 10001 --gid 10001 \
       --home-dir /var/lib/wapulse --no-create-home --shell /usr/sbin/nologin wapulse \
    && install -d -o 10001 -g 10001 -m 0700 /var/lib/wapulse
COPY --from=build /out/wapulse /usr/local/bin/wapulse
# Inside a container 127.0.0.1 (the default bind) is unreachable from
# outside it: listen on every interface. The environment wins over a
# config file's bind and data_dir.
ENV WAPULSE_BIND=0.0.0.0:3001 \
    WAPULSE_DATA_DIR=/var/lib/wapulse
# Numeric, so that Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
VOLUME /var/lib/wapulse
EXPOSE 3001
# `wapulse check` needs no curl in the image. /readyz (the store and the
# model are up, readiness probes pass) rather than check's default URL,
# /session/health, which is the health of one WhatsApp session (the default
# session) and turns critical with it while wapulse itself is fine. A
# container started with another PORT needs its own HEALTHCHECK.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["wapulse", "check", "--timeout", "4s", "http://127.0.0.1:3001/readyz"]
ENTRYPOINT ["wapulse"]
CMD ["serve"]
