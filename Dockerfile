# Multi-stage build: a static garner binary on an empty base image, run as
# an unprivileged user.
#   docker build --build-arg VERSION=$(git describe --tags --always) \
#     --build-arg COMMIT=$(git rev-parse HEAD) --build-arg BUILD_DATE=$(date -u +%FT%TZ) -t garner .
#   docker run -p 8125:8125/udp -p 8126:8126 garner
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
ARG BUILD_DATE=unknown
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w \
        -X github.com/garner-metrics/garner/pkg/version.Version=${VERSION} \
        -X github.com/garner-metrics/garner/pkg/version.Commit=${COMMIT} \
        -X github.com/garner-metrics/garner/pkg/version.BuildDate=${BUILD_DATE}" \
      -o /out/garner ./cmd/garner \
 && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/garner-load ./cmd/garner-load

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/garner /out/garner-load /
USER 65532:65532
# In a container the admin server must be reachable for Kubernetes probes:
# listen on every interface (set GARNER_ADMIN_TOKEN to protect it).
ENV GARNER_ADMIN_ADDR=:8126
EXPOSE 8125/udp 8125/tcp 8126/tcp
ENTRYPOINT ["/garner"]
