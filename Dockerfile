# syntax=docker/dockerfile:1
# Multi-stage, multi-arch: build a static binary on the build platform for the target platform, ship it on
# distroless static as a non-root user.
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS
ARG TARGETARCH
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY cmd/ cmd/
COPY policy/ policy/
COPY webhook/ webhook/
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags="-s -w" -o /out/flux-identity-webhook ./cmd/flux-identity-webhook

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/flux-identity-webhook /flux-identity-webhook
USER 65532:65532
EXPOSE 9443 8080 8081
ENTRYPOINT ["/flux-identity-webhook"]
CMD ["serve", "--policy=/etc/flux-identity-webhook/policy.yaml", "--cert-dir=/tls"]
