# Builds the orchestrator binary; used by docker-compose.yml.
FROM rust:1-bookworm AS build
# protoc: the etcd client's gRPC code is generated at build time.
RUN apt-get update && apt-get install -y --no-install-recommends protobuf-compiler && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --bin failover-orchestrator

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/failover-orchestrator /usr/local/bin/failover-orchestrator
ENTRYPOINT ["failover-orchestrator"]
CMD ["serve", "--config", "/etc/failover-orchestrator/regions.toml"]
