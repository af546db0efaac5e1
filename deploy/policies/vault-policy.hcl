# Minimal Vault / OpenBao policy for k8s-kms-plugin (Transit KEK).
#
# Replace "transit" with vault.transitMount and "k8s-kms-kek" with vault.keyName.
# With a namespace, write the policy inside that namespace (vault policy write -namespace=NS ...).
#
#   vault policy write k8s-kms-plugin deploy/policies/vault-policy.hcl

# Wrap new DEKs (encrypt with an explicit key_version).
path "transit/encrypt/k8s-kms-kek" {
  capabilities = ["update"]
}

# Unwrap DEKs.
path "transit/decrypt/k8s-kms-kek" {
  capabilities = ["update"]
}

# Read the key's metadata: latest version, creation times, min versions, deletion_allowed.
path "transit/keys/k8s-kms-kek" {
  capabilities = ["read"]
}

# Token lookup and renewal are granted by Vault's built-in "default" policy; keep it attached
# (token_policies = ["default", "k8s-kms-plugin"]) or add:
#   path "auth/token/lookup-self" { capabilities = ["read"] }
#   path "auth/token/renew-self"  { capabilities = ["update"] }
