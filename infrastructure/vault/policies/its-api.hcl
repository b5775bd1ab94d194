# The API reads its own secrets (API keys, its database and object-store credentials); it
# writes nothing and reads no other identity's.
path "secret/data/its/api/*" {
  capabilities = ["read"]
}
path "auth/token/renew-self" {
  capabilities = ["update"]
}
