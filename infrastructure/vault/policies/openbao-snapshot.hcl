# The raft snapshot CronJob (its-vault-config chart, snapshots.*): take a snapshot, nothing else.
path "sys/storage/raft/snapshot" {
  capabilities = ["read"]
}
