"""The local Kubernetes cluster: a real control plane, kwok nodes from the stack's node pools,
and ArgoCD syncing an environment from this repository (`python -m infra.cluster`)."""
