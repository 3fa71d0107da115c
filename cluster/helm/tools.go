//go:build tools

// Package tools names the helm command that `make cluster` builds, so that `go mod tidy` keeps its
// dependencies.
package tools

import _ "helm.sh/helm/v4/cmd/helm"
