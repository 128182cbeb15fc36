// Package fluxcompat holds the webhook to the libraries that read what it writes, outside its dependency graph:
// Flux's own code (the credential model on generated inputs; object-level identity through a real API server, with
// github.com/fluxcd/pkg/auth exchanging ServiceAccount tokens at local stand-ins of the clouds' token endpoints) and
// Google's golang.org/x/oauth2/google, which Flux's gcp provider is built on, loading the credential configuration
// full injection delivers. Direct federation (no Google service account, outside GKE and on GKE against a metadata
// stand-in) and Flux's controller-level AWS path reaching an EKS Pod Identity Agent stand-in are held there too.
package fluxcompat
