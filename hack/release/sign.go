package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// loadKey reads an unencrypted PEM ECDSA P-256 private key, PKCS#8 ("PRIVATE KEY", what keygen and `openssl genpkey`
// write) or SEC 1 ("EC PRIVATE KEY"). cosign's own encrypted keys ("ENCRYPTED SIGSTORE PRIVATE KEY") are refused with
// the way to export them.
func loadKey(path string) (*ecdsa.PrivateKey, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		return nil, fmt.Errorf("signing key %s: no PEM block", path)
	}
	var key any
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("signing key %s: a %q PEM block; want an unencrypted PKCS#8 or SEC 1 ECDSA key "+
			"(for a cosign key: cosign import-key-pair takes one, or decrypt it with the password)", path, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", path, err)
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, fmt.Errorf("signing key %s: want ECDSA P-256 (cosign's key type), got %T", path, key)
	}
	return ec, nil
}

// keygen writes a new key pair: cosign.key (PKCS#8, mode 0600) and cosign.pub.
func keygen(dir string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "cosign.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY",
		Bytes: der}), 0o600); err != nil {
		return err
	}
	return writePublicKey(key, filepath.Join(dir, PublicKeyFile))
}

// writePublicKey writes the PKIX "PUBLIC KEY" PEM that `cosign verify --key` and `cosign verify-blob --key` read.
func writePublicKey(key *ecdsa.PrivateKey, path string) error {
	der, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644)
}

// signFile writes to sigPath the signature of the file at path as `cosign sign-blob --key` writes it: the base64 of
// an ASN.1 ECDSA signature over the file's SHA-256. The signature is RFC 6979's deterministic one (a nil random
// source), so a rebuild signs to the same bytes.
func signFile(key *ecdsa.PrivateKey, path, sigPath string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	digest := sha256.Sum256(data)
	sig, err := key.Sign(nil, digest[:], crypto.SHA256)
	if err != nil {
		return fmt.Errorf("sign %s: %w", path, err)
	}
	if !ecdsa.VerifyASN1(&key.PublicKey, digest[:], sig) {
		return errors.New("sign " + path + ": the signature does not verify")
	}
	return os.WriteFile(sigPath, []byte(base64.StdEncoding.EncodeToString(sig)), 0o644)
}

// simpleSigningPayload is what `cosign sign` signs for an image: the "cosign container image signature" of
// containers/image's simple signing format, naming the repository and the manifest digest (sigstore/sigstore
// pkg/signature/payload.Cosign.MarshalJSON). `cosign attach signature --payload FILE --signature SIG REF@DIGEST`
// stores it with its signature next to the pushed artifact, where `cosign verify --key cosign.pub` finds it.
func simpleSigningPayload(repository, digest string) []byte {
	type identity struct {
		DockerReference string `json:"docker-reference"`
	}
	type image struct {
		DockerManifestDigest string `json:"docker-manifest-digest"`
	}
	type critical struct {
		Identity identity `json:"identity"`
		Image    image    `json:"image"`
		Type     string   `json:"type"`
	}
	b, err := json.Marshal(struct {
		Critical critical `json:"critical"`
		Optional any      `json:"optional"`
	}{Critical: critical{Identity: identity{repository}, Image: image{digest}, Type: "cosign container image signature"}})
	if err != nil {
		panic(err) // only strings: cannot fail
	}
	return b
}
