//go:build tools

// Package tools pins the istioctl command this wrapper module builds (tests run Istio's own
// analyzer, `istioctl analyze`, over the program's mesh objects on the local cluster).
package tools

import _ "istio.io/istio/istioctl/cmd/istioctl"
