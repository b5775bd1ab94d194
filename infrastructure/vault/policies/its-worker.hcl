# The worker reads database, broker and object-store credentials; it writes nothing.
path "secret/data/its/worker/*" {
  capabilities = ["read"]
}
path "secret/data/its/shared/*" {
  capabilities = ["read"]
}
path "auth/token/renew-self" {
  capabilities = ["update"]
}
