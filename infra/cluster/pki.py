"""The local cluster's credentials, made once per state directory with openssl: a CA, the API
server's serving certificate, the service-account signing key pair and the admin token.

The admin authenticates with a static bearer token (the API server's --token-auth-file) in
group system:masters; every component of the cluster uses the same kubeconfig, but for the real
node's kubelet, which has a node token of its own. Good enough for
a loopback-only cluster that lives as long as a test session, and nothing here is reused in
production (EKS issues its own).
"""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path

import yaml

from infra.cluster.config import CLUSTER_NAME, ClusterConfig
from infra.cluster.node import NODE_USER
from infra.kernel.layout import HOST

ADMIN_USER = "its-admin"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def ensure_pki(cfg: ClusterConfig) -> None:
    pki = cfg.pki_dir
    pki.mkdir(parents=True, exist_ok=True)
    pki.chmod(0o700)
    if not (pki / "ca.crt").exists():
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj",
                 "/CN=its-local-ca", "-keyout", "ca.key", "-out", "ca.crt", cwd=pki)  # fmt: skip
    if not (pki / "apiserver.crt").exists():
        (pki / "apiserver.ext").write_text(
            f"subjectAltName=IP:{HOST},DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,"
            "DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:10.96.0.1\n"
            "extendedKeyUsage=serverAuth\n"
        )
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=kube-apiserver",
                 "-keyout", "apiserver.key", "-out", "apiserver.csr", cwd=pki)  # fmt: skip
        _openssl("x509", "-req", "-in", "apiserver.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-days", "30", "-extfile", "apiserver.ext",
                 "-out", "apiserver.crt", cwd=pki)  # fmt: skip
    if not (pki / "sa.key").exists():
        _openssl("genrsa", "-out", "sa.key", "2048", cwd=pki)
        _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)
    if not (pki / "tokens.csv").exists():
        token = secrets.token_hex(24)
        (pki / "admin.token").write_text(token)
        # token,user,uid,"group1,group2"
        (pki / "tokens.csv").write_text(f'{token},{ADMIN_USER},{ADMIN_USER},"system:masters"\n')
    if not (pki / "node.token").exists():
        # The real node's kubelet (infra/cluster/node.py): system:node:<name> in system:nodes,
        # which the Node authorizer and NodeRestriction limit to that node and its pods.
        token = secrets.token_hex(24)
        (pki / "node.token").write_text(token)
        with (pki / "tokens.csv").open("a") as tokens:
            tokens.write(f'{token},{NODE_USER},{NODE_USER},"system:nodes"\n')
    write_kubeconfig(cfg)


def admin_token(cfg: ClusterConfig) -> str:
    return (cfg.pki_dir / "admin.token").read_text().strip()


def node_token(cfg: ClusterConfig) -> str:
    return (cfg.pki_dir / "node.token").read_text().strip()


def ca_pem(cfg: ClusterConfig) -> str:
    return (cfg.pki_dir / "ca.crt").read_text()


def write_kubeconfig(cfg: ClusterConfig) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": CLUSTER_NAME,
                "cluster": {
                    "server": f"https://{HOST}:{cfg.ports.apiserver}",
                    "certificate-authority": str(cfg.pki_dir / "ca.crt"),
                },
            }
        ],
        "users": [{"name": ADMIN_USER, "user": {"token": admin_token(cfg)}}],
        "contexts": [{"name": CLUSTER_NAME, "context": {"cluster": CLUSTER_NAME, "user": ADMIN_USER}}],
        "current-context": CLUSTER_NAME,
    }
    cfg.kubeconfig.write_text(yaml.safe_dump(config))
    cfg.kubeconfig.chmod(0o600)
