# Break-glass for a platform operator (docs/runbooks/vault.md): a token of the service account
# openbao-operator in namespace vault (`kubectl create token`, so only who may do that) logs in
# as the Kubernetes-auth role of the same name, made by OpenBao's self-initialisation. Raft
# snapshots and restores, the peer set and the recovery keys; no secret of the KV mount.
path "sys/storage/raft/snapshot" {
  capabilities = ["read", "update"]
}
path "sys/storage/raft/snapshot-force" {
  capabilities = ["update"]
}
path "sys/storage/raft/configuration" {
  capabilities = ["read"]
}
path "sys/storage/raft/remove-peer" {
  capabilities = ["update"]
}
# Authenticated recovery-key generation (self-initialisation makes none).
path "sys/rotate/recovery/*" {
  capabilities = ["create", "update", "read"]
}
path "sys/audit" {
  capabilities = ["read", "sudo"]
}
