# syntax=docker/dockerfile:1
# Multi-stage, multi-arch: the build stage runs on the build machine's platform and cross-compiles a static binary
# for the target platform (no emulation), which ships on distroless static as a non-root user.
#
#   docker buildx build --platform linux/amd64,linux/arm64 \
#     --build-arg VERSION=v0.1.0 --build-arg COMMIT=$(git rev-parse HEAD) \
#     -t ghcr.io/fluxidentity/flux-identity-webhook:v0.1.0 .
#
# Without Docker, `make image` builds the same image (hack/image; test/image holds the two to the same user,
# entrypoint, arguments, ports and labels).
#
# The chart runs it with a read-only root filesystem: the server writes nothing, reads the policy from
# /etc/flux-identity-webhook and the serving certificate from /tls.
ARG GO_VERSION=1.26.8

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
ARG TARGETOS
ARG TARGETARCH
ARG TARGETVARIANT
ARG VERSION=dev
ARG COMMIT=unknown
WORKDIR /src
# Modules first: this layer stays cached until go.mod or go.sum change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
# Only the packages the binary is built from (test/, charts/ and config/ stay out of the build context's use).
COPY cmd/ cmd/
COPY internal/ internal/
COPY policy/ policy/
COPY webhook/ webhook/
# GOARM comes from the platform variant (linux/arm/v7 -> 7); it is ignored for other architectures.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH GOARM=${TARGETVARIANT#v} \
    go build -trimpath -buildvcs=false \
      -ldflags="-s -w -X github.com/fluxidentity/flux-identity-webhook/cmd/flux-identity-webhook/app.version=${VERSION} -X github.com/fluxidentity/flux-identity-webhook/cmd/flux-identity-webhook/app.commit=${COMMIT}" \
      -o /out/flux-identity-webhook ./cmd/flux-identity-webhook

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
ARG COMMIT=unknown
LABEL org.opencontainers.image.title="flux-identity-webhook" \
      org.opencontainers.image.description="Cloud workload identity for Flux CD from one policy file" \
      org.opencontainers.image.source="https://github.com/fluxidentity/flux-identity-webhook" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}"
COPY --from=build /out/flux-identity-webhook /flux-identity-webhook
# 65532 is distroless's nonroot user; the chart's securityContext uses the same IDs.
USER 65532:65532
EXPOSE 9443 8080 8081
ENTRYPOINT ["/flux-identity-webhook"]
CMD ["serve", "--policy=/etc/flux-identity-webhook/policy.yaml", "--cert-dir=/tls"]
