"""The supervised-process kernel shared by the local platform (infra/local) and the local
Kubernetes cluster (infra/cluster): where a set of processes keeps its state, which loopback
ports it takes, how a program is described, and the supervisord that runs them.

It knows nothing of either user: both import it, neither imports the other.
"""
