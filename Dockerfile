# slate, built from source in a Rust image and run from a slim Debian one.
#
#   docker build -t slate .
#   docker run --rm slate replay --slo /etc/slate/service-slos.yml /etc/slate/incidents.jsonl.gz
#
# The image is built with TLS and SCRAM for Kafka (`--features ssl`).

FROM rust:1.95-bookworm AS build
# librdkafka is built from the rdkafka crate's bundled source (a C compiler
# and make come with the image); OpenSSL for TLS and SCRAM.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libssl-dev pkg-config zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies first, so that a change to slate's own code rebuilds only slate.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && for b in core state replay_e2e kafka_e2e; do echo 'fn main() {}' > "benches/$b.rs"; done \
    && cargo build --release --locked --features ssl \
    && rm -rf src benches
COPY src src
COPY benches benches
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --features ssl --bin slate \
    && strip target/release/slate

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates libssl3 zlib1g \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 slate \
    && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin slate
COPY --from=build /src/target/release/slate /usr/local/bin/slate
COPY fixtures/service-slos.yml fixtures/incidents.jsonl.gz /etc/slate/
# slate run keeps its state here (state.dir; the default slate-data is
# relative to this working directory): give it a volume.
RUN mkdir -p /var/lib/slate && chown 10001:10001 /var/lib/slate
WORKDIR /var/lib/slate
VOLUME /var/lib/slate
USER 10001:10001
EXPOSE 9898
ENTRYPOINT ["slate"]
CMD ["--help"]
