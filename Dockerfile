# The epoxy binary in a small image, for `demo/kubernetes/epoxy.yaml`.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked

FROM debian:bookworm-slim
COPY --from=build /src/target/release/epoxy /usr/local/bin/epoxy
USER 65532
ENTRYPOINT ["/usr/local/bin/epoxy"]
