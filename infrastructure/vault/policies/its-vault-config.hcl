# The provisioner: the its-vault-config Job, logged in with its service account's token
# (Kubernetes auth, role its-vault-config, made by OpenBao's self-initialisation:
# infra/pulumi/vault_bootstrap.py). It keeps the KV mount, every policy of this folder, the
# Kubernetes-auth roles and the credentials the Pulumi program generated; it reads no secret.
path "sys/mounts" {
  capabilities = ["read"]
}
path "sys/mounts/secret" {
  capabilities = ["create", "update", "read"]
}
path "sys/policies/acl/*" {
  capabilities = ["create", "update", "read"]
}
path "auth/kubernetes/role/*" {
  capabilities = ["create", "update", "read"]
}
# The generated credentials (the seed): written, never read back.
path "secret/data/its/*" {
  capabilities = ["create", "update"]
}
# The API's key records are an operator's (docs/runbooks/api-keys.md), never the seed's.
path "secret/data/its/api/auth" {
  capabilities = ["deny"]
}
