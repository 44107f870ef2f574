# Production image: one binary, subcommand chosen by the compose service.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
ENV SQLX_OFFLINE=true
RUN cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/mimamori /usr/local/bin/mimamori
COPY flows /app/flows
COPY voice-prompts /app/voice-prompts
WORKDIR /app
USER 65534
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/mimamori"]
CMD ["serve"]
