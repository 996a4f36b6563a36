# llmtap container image: build with the locked dependencies, run on a minimal base as a
# non-root user. The proxy listens on 0.0.0.0 inside the container (LLMTAP_LISTEN), which
# llmtap allows only with --auth-file (or --allow-open-proxy on a trusted network).
#   docker build -t llmtap .
#   docker run -v llmtap-ca:/var/lib/llmtap/ca -v ./auth:/etc/llmtap/auth:ro \
#     -p 127.0.0.1:8080:8080 -p 127.0.0.1:9464:9464 llmtap run --auth-file /etc/llmtap/auth

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Dependencies first, so that source edits do not rebuild them. The manifest needs the
# patched hudsucker (vendor/) and the workspace's other member (crates/, a test double).
COPY Cargo.toml Cargo.lock ./
# Build settings (jemalloc's compiled-in options).
COPY .cargo ./.cargo
COPY vendor ./vendor
COPY crates ./crates
RUN mkdir src && printf 'fn main() {}\n' > src/main.rs && printf '' > src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src
COPY src ./src
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked \
    && strip target/release/llmtap

FROM debian:bookworm-slim
# ca-certificates: the system roots llmtap trusts upstream and puts in bundle.pem.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates=20230311* \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 65532 llmtap \
    && useradd --uid 65532 --gid 65532 --no-create-home --shell /usr/sbin/nologin llmtap \
    && mkdir -p /var/lib/llmtap/ca /var/lib/llmtap/history \
    && chown 65532:65532 /var/lib/llmtap/ca /var/lib/llmtap/history \
    && chmod 0700 /var/lib/llmtap/history
COPY --from=build /src/target/release/llmtap /usr/local/bin/llmtap
USER 65532:65532
ENV LLMTAP_LISTEN=0.0.0.0:8080 \
    LLMTAP_ADMIN=0.0.0.0:9464 \
    LLMTAP_CA_DIR=/var/lib/llmtap/ca \
    LLMTAP_DB=/var/lib/llmtap/history/llmtap.db \
    LLMTAP_LOG_FORMAT=json
VOLUME ["/var/lib/llmtap/ca", "/var/lib/llmtap/history"]
EXPOSE 8080 9464
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 CMD ["llmtap", "healthcheck"]
ENTRYPOINT ["llmtap"]
CMD ["run"]
