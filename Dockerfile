# syntax=docker/dockerfile:1.7
#
# One image for every process of RecomAMP Engine: `api`, `worker`, `scheduler`, `migrate`
# and `amc-sim`, all in /usr/local/bin; the container's command picks the process
# (`docker run IMAGE worker`, `command: ["migrate", "up"]`). The default is `api`.
#
#   docker build -t recomamp:dev .
#
# Stages: chef (the toolchain and cargo-chef) → planner (the dependency recipe of the
# workspace) → builder (dependencies cooked in a layer of their own, cached until
# Cargo.toml/Cargo.lock change; then the workspace) → runtime (debian slim, no toolchain).
#
# Image size, an ESTIMATE (no Docker engine runs where this was written): the five release
# binaries add up to 105 MB (100 MiB by `du -ch`) after `cargo build --release --workspace
# --bins` (Rust 1.95, not stripped: api 34, worker 28, scheduler 25, amc-sim 9, migrate 9),
# on debian:bookworm-slim (75 MB unpacked, 28 MB compressed as published) plus
# ca-certificates with OpenSSL (9 MB): about 190 MB unpacked, about 70 MB compressed to pull
# (the binaries gzip to 36 MB). They link only glibc (2.34 symbols) and libgcc_s, both in
# the base.
#
# Checked by ops/deploy/check.sh (parsed with dockerfile-parse): the final stage has no
# toolchain, runs as a non-root USER, has a HEALTHCHECK, and its `cargo build` is the release
# build of CI's command (ops/test's `cargo build`, with --release).

ARG RUST_VERSION=1.95
ARG DEBIAN_SUITE=bookworm

FROM rust:${RUST_VERSION}-${DEBIAN_SUITE} AS chef
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
# Every dependency of every binary, built with the same profile and flags as the build below
# so that it reuses them.
RUN cargo chef cook --release --workspace --bins --recipe-path recipe.json
COPY . .
# CI's build command (ops/test), with --release.
RUN cargo build --release --workspace --bins
RUN mkdir -p /out \
 && for bin in api worker scheduler migrate amc-sim; do cp "target/release/$bin" /out/; done

FROM debian:${DEBIAN_SUITE}-slim AS runtime
# ca-certificates: Amazon's HTTPS endpoints (reqwest with rustls verifies with the system's
# roots). Nothing else: the probe below is plain bash.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 amp \
 && useradd --uid 10001 --gid 10001 --home-dir /var/lib/amp --no-create-home \
      --shell /usr/sbin/nologin amp \
 && mkdir -p /var/lib/amp/results \
 && chown -R 10001:10001 /var/lib/amp
COPY --from=builder /out/ /usr/local/bin/
COPY --chmod=0755 ops/deploy/amp-healthcheck /usr/local/bin/amp-healthcheck
WORKDIR /var/lib/amp
# Container defaults: listen on every interface, and serve the worker's and the scheduler's
# /healthz, /readyz and /metrics (off when unset outside a container). The result store is a
# folder of the image (a volume in docker-compose.yml; s3:// in Kubernetes, where the api and
# the workers are on different machines).
ENV AMP_API_ADDR=0.0.0.0:8080 \
    AMP_WORKER_HEALTH_ADDR=0.0.0.0:8081 \
    AMP_SCHEDULER_HEALTH_ADDR=0.0.0.0:8082 \
    AMP_SIM_ADDR=0.0.0.0:8090 \
    AMP_RESULTS_URL=/var/lib/amp/results
USER 10001:10001
# 8080 api, 8081 worker health and metrics, 8082 scheduler health and metrics, 8090 amc-sim.
EXPOSE 8080 8081 8082 8090
# One probe for every kind of process: amp-healthcheck finds which binary this container runs
# and asks its own endpoint (api, worker, scheduler: /readyz; amc-sim: /sim/admin/stats;
# migrate: healthy while it runs). AMP_HEALTH_URL, or an argument, overrides it.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 CMD ["amp-healthcheck"]
CMD ["api"]
