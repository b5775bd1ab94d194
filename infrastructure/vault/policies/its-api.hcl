# The API reads its own secrets (API key records and their pepper, database and object-store
# credentials); it writes nothing.
path "secret/data/its/api/auth" {
  capabilities = ["read"]
}
path "secret/data/its/api/pepper" {
  capabilities = ["read"]
}
path "secret/data/its/shared/*" {
  capabilities = ["read"]
}
path "auth/token/renew-self" {
  capabilities = ["update"]
}
