# Builds the orchestrator binary; used by docker-compose.yml.
FROM rust:1-bookworm AS build
# protoc: the etcd client's gRPC code is generated at build time.
RUN apt-get update && apt-get install -y --no-install-recommends protobuf-compiler && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --bin failover-orchestrator

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
# The orchestrator needs no privilege: it listens on an unprivileged port and writes only its
# spill directory. It runs as this user (no shell, no password), which owns that directory so
# a fresh named volume mounted there is writable.
RUN groupadd --system --gid 10001 failover \
 && useradd --system --uid 10001 --gid failover --home-dir /var/lib/failover-orchestrator \
      --shell /usr/sbin/nologin failover \
 && install -d -o failover -g failover -m 0750 /var/lib/failover-orchestrator /var/lib/failover-orchestrator/spill
COPY --from=build /src/target/release/failover-orchestrator /usr/local/bin/failover-orchestrator
USER 10001:10001
WORKDIR /var/lib/failover-orchestrator
ENTRYPOINT ["failover-orchestrator"]
CMD ["serve", "--config", "/etc/failover-orchestrator/regions.toml"]
