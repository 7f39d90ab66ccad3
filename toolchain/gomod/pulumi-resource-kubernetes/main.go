// Wrapper entry point for the Kubernetes resource provider (pulumi-kubernetes v4.25.0,
// commit f47bc2d6f199). toolchain/lib.sh builds it in a temporary copy of this directory,
// after generating schema-embed.json / terraform-mapping-embed.json from the provider
// module's cmd/pulumi-resource-kubernetes/{schema,terraform-mapping}.json. Those generated
// files are never committed.
package main

import (
	_ "embed"

	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/provider"
	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version"
)

//go:embed schema-embed.json
var pulumiSchema []byte

//go:embed terraform-mapping-embed.json
var terraformMapping []byte

func main() {
	provider.Serve("kubernetes", version.Version, pulumiSchema, terraformMapping)
}
