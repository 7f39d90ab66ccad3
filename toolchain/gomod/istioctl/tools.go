//go:build tools

// Package tools pins the istio.io/istio commands this wrapper module builds: istioctl (tests run
// Istio's own analyzer, `istioctl analyze`, over the program's mesh objects on the local cluster)
// and pilot-discovery (istiod, the local platform's sidecar injector; platform/build.sh istiod).
package tools

import (
	_ "istio.io/istio/istioctl/cmd/istioctl"
	_ "istio.io/istio/pilot/cmd/pilot-discovery"
)
