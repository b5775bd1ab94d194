# The stream ingest reads its own database, object-store, Kafka and Redis logins, and the
# credentials of the camera streams it opens (its/streams/<name>); it writes nothing.
path "secret/data/its/ingest/*" {
  capabilities = ["read"]
}
path "secret/data/its/streams/*" {
  capabilities = ["read"]
}
path "auth/token/renew-self" {
  capabilities = ["update"]
}
