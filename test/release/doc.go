// Package release is a test-only module that verifies a release built by `make release` (hack/release) with other
// people's verifiers: signatures with sigstore's signature package (what cosign verifies with), the provenance with
// in-toto's attestation types, the SBOMs with CycloneDX's Go library against `go version -m`, the chart with helm
// pulling it from a registry, the image's layers against the binaries; and rebuilds the release from what its
// provenance says, byte for byte. `make release-verify` runs it.
package release
