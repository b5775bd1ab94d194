# The migration Job reads the schema owner's credentials; nothing else.
path "secret/data/its/migrate/*" {
  capabilities = ["read"]
}
