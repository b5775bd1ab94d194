//go:build tools

// Package tools pins the Kubernetes binaries tools/install.sh builds from this module: the
// control plane of the local cluster and the kubelet of its real node (one release for all).
package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubelet"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
