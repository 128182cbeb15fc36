// Package fluxcompat compares the webhook's credential model with Flux's own code on generated inputs.
package fluxcompat
