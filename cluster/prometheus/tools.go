//go:build tools

// Package tools names the Prometheus server the e2e suite runs inside the cluster (e2e/prometheus.yaml), so that
// `go mod tidy` keeps its dependencies. It is built with only Kubernetes service discovery
// (remove_all_sd,enable_kubernetes_sd) and without cgo, so that its image is the static binary alone.
package tools

import _ "github.com/prometheus/prometheus/cmd/prometheus"
