# The worker reads its own database and object-store credentials; it writes nothing.
path "secret/data/its/worker/*" {
  capabilities = ["read"]
}
path "auth/token/renew-self" {
  capabilities = ["update"]
}
