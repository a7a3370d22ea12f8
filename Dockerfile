# syntax=docker/dockerfile:1.7
#
# Builds both payhook binaries into one image. Pick the binary with the container command:
#   payhook-ingest run | migrate | send-test FILE
#   payhook-consumer run | migrate | ...
# With no command the image runs `payhook-ingest run`, which on its own (no database or
# broker configured) is the embedded single-process mode on a SQLite file in /var/lib/payhook.

ARG RUST_IMAGE=rust:1.95-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
WORKDIR /src
COPY . .
# The cache mounts keep the crates.io registry and compiled dependencies between builds, so a
# source change recompiles only the workspace crates. They need BuildKit (the default builder
# since Docker Engine 23). The binaries are copied out of the cached target directory because
# a cache mount is not part of the image.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p payhook-ingest -p payhook-consumer \
    && install -D -m 0755 -t /out target/release/payhook-ingest target/release/payhook-consumer

FROM ${RUNTIME_IMAGE} AS runtime
# ca-certificates: TLS to PayPal, a managed database or a broker verifies against the system
# roots. No curl or wget: the compose health checks use bash's /dev/tcp instead.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 payhook \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/payhook \
        --shell /usr/sbin/nologin payhook \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/payhook
COPY --from=build /out/ /usr/local/bin/
USER 10001:10001
# The embedded mode's default database URL is a relative SQLite path, so it lands here.
WORKDIR /var/lib/payhook
VOLUME ["/var/lib/payhook"]
# 7002: public webhook listener. 7003: admin listener (health, metrics, monitoring API). The
# admin listener binds 127.0.0.1 unless its address is set, and needs a token on any other.
EXPOSE 7002 7003
# NOTE: no HEALTHCHECK, because the image has no HTTP client and the binaries have no probe
# subcommand. Compose defines its own health checks and Kubernetes uses HTTP probes.
CMD ["payhook-ingest", "run"]
