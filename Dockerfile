# syntax=docker/dockerfile:1
# takumo-aegis: one static binary for the ext_proc sidecar, the coordinator, the
# standalone gateway and the CLI. The final image has no shell and no package manager,
# runs as nobody (65534:65534) and writes only to its data directory, a volume
# (/var/lib/takumo), so it runs with a read-only root filesystem.
#
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) -t takumo/aegis .

FROM golang:1.26 AS build
WORKDIR /src
# Dependencies first: this layer stays cached while only our sources change.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# The Makefile's build: static (CGO_ENABLED=0; SQLite is pure Go), -trimpath, the same ldflags.
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/takumo/aegis/cli.Version=${VERSION}" \
      -o /out/takumo-aegis ./cmd/takumo-aegis \
 && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/takumo-aegis /usr/local/bin/takumo-aegis
# The data directory (SQLite, the coordinator's admin token, the gateway's registration),
# owned by nobody; mount a volume here in Kubernetes.
COPY --from=build --chown=65534:65534 /out/data /var/lib/takumo
ENV TAKUMO_DATA_DIR=/var/lib/takumo
USER 65534:65534
WORKDIR /var/lib/takumo
VOLUME ["/var/lib/takumo"]
# 9000 ext_proc gRPC (chart), 50051 coordinator gRPC, 8081 coordinator admin API, 8080 standalone gateway.
EXPOSE 9000 50051 8081 8080
ENTRYPOINT ["/usr/local/bin/takumo-aegis"]
CMD ["--help"]
