//go:build tools

// Package tools pins the actionlint command this wrapper module builds (tests check the
// repository's workflows with it).
package tools

import _ "github.com/rhysd/actionlint/cmd/actionlint"
