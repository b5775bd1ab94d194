# The API reads its own secrets (API keys, database and object-store credentials); it writes nothing.
path "secret/data/its/api/*" {
  capabilities = ["read"]
}
path "secret/data/its/shared/*" {
  capabilities = ["read"]
}
path "auth/token/renew-self" {
  capabilities = ["update"]
}
