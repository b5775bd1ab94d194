//go:build tools

// Package tools pins the ArgoCD binary tools/install.sh builds from this module (one binary; it
// runs as argocd-repo-server or argocd-application-controller by the name it is called with).
package tools

import (
	_ "github.com/argoproj/argo-cd/v3/cmd"
)
