{{- define "itsvault.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: its-camera-ai
app.kubernetes.io/component: provisioner
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
its.ai/environment: {{ required "environment is required" .Values.environment }}
{{- end }}

{{- define "itsvault.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The CLI image: the OpenBao release the cluster runs (files/compatibility.yaml ->
     infrastructure/cloud/compatibility.yaml, the openbao chart's appVersion) unless a tag or a
     digest is set. */}}
{{- define "itsvault.image" -}}
{{- if .Values.image.digest }}{{ printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}{{ printf "%s:%s" .Values.image.repository (include "itsvault.imageTag" .) }}{{ end }}
{{- end }}

{{- define "itsvault.imageTag" -}}
{{- if .Values.image.tag }}{{ .Values.image.tag }}
{{- else }}
{{- $table := .Files.Get "files/compatibility.yaml" | fromYaml }}
{{- $openbao := (($table.charts | default dict).openbao | default dict) }}
{{- required "files/compatibility.yaml has no charts.openbao.appVersion" $openbao.appVersion | trimPrefix "v" }}
{{- end }}
{{- end }}

{{/* Logs the CLI in with the pod's audience-bound service-account token (the vault-token
     volume) as a Kubernetes-auth role, and exports the token for the commands after it. */}}
{{- define "itsvault.login" -}}
{{- $cli := .ctx.Values.image.cli }}
{{- $var := ternary "BAO_TOKEN" "VAULT_TOKEN" (eq $cli "bao") }}
{{ $var }}="$({{ $cli }} write -field=token auth/kubernetes/login role={{ .role }} jwt=@/var/run/secrets/vault/token)"
export {{ $var }}
{{- end }}

{{/* The service-account token a Kubernetes-auth login sends: bound to Vault's audience, short. */}}
{{- define "itsvault.tokenVolume" -}}
- name: vault-token
  projected:
    defaultMode: 0440
    sources:
      - serviceAccountToken:
          path: token
          audience: {{ .Values.app.tokenAudience | quote }}
          expirationSeconds: 600
{{- end }}

{{- define "itsvault.configData" -}}
{{- $layout := .Files.Get "files/vault.yaml" | fromYaml }}
{{- if or (hasKey $layout "Error") (not $layout.kv_mount) }}
{{- fail "files/vault.yaml (-> infrastructure/vault/vault.yaml) is missing or has no kv_mount" }}
{{- end }}
{{- $policies := dict }}
{{- range $path, $_ := .Files.Glob "files/policies/*.hcl" }}
{{- $_ := set $policies (base $path | trimSuffix ".hcl") $path }}
{{- end }}
{{- $cli := .Values.image.cli }}
{{- $mount := $layout.kv_mount }}
apply.sh: |
  #!/bin/sh
  # Generated from infrastructure/vault/vault.yaml by the its-vault-config chart. Idempotent.
  set -eu
  export HOME=/tmp
  # OpenBao's self-initialisation made this role, the audit device and Kubernetes auth
  # (infra/pulumi/vault_bootstrap.py): the Job logs in with its own service account's token.
  {{- include "itsvault.login" (dict "ctx" . "role" .Values.provisioner.vaultRole) | nindent 2 }}
  {{ $cli }} secrets list -format=json | grep -q '"{{ $mount }}/"' \
    || {{ $cli }} secrets enable -path={{ $mount }} -version={{ $layout.kv_version | default 2 }} kv
  {{- range $name, $path := $policies }}
  {{ $cli }} policy write {{ $name }} /config/policy-{{ $name }}.hcl
  {{- end }}
  {{- range $layout.approles }}
  {{- range .policies }}
  {{- if not (hasKey $policies .) }}
  {{- fail (printf "vault.yaml: policy %q has no file in infrastructure/vault/policies/" .) }}
  {{- end }}
  {{- end }}
  {{ $cli }} write auth/kubernetes/role/{{ .name }} \
    bound_service_account_names={{ .name }} \
    bound_service_account_namespaces={{ $.Values.app.namespace }} \
    audience={{ $.Values.app.tokenAudience }} \
    policies={{ join "," .policies }} \
    token_ttl={{ .token_ttl }} token_max_ttl={{ .token_max_ttl }}
  {{- end }}
  {{- with .Values.snapshots }}
  {{- if .enabled }}
  {{- if not (hasKey $policies .policy) }}
  {{- fail (printf "snapshots.policy: %q has no file in infrastructure/vault/policies/" .policy) }}
  {{- end }}
  # The raft snapshot CronJob: its own service account in this namespace, its one policy.
  {{ $cli }} write auth/kubernetes/role/{{ .vaultRole }} \
    bound_service_account_names={{ .serviceAccount }} \
    bound_service_account_namespaces={{ $.Release.Namespace }} \
    audience={{ $.Values.app.tokenAudience }} \
    policies={{ .policy }} \
    token_ttl={{ .tokenTtl }} token_max_ttl={{ .tokenTtl }}
  {{- end }}
  {{- end }}
  # The generated credentials (Pulumi's seed Secret): its.api.redis -> its/api/redis.
  for file in /seed/*; do
    {{ $cli }} kv put -mount={{ $mount }} "$(basename "$file" | tr . /)" @"$file" >/dev/null
    echo "seeded $(basename "$file" | tr . /)"
  done
  echo "done"
{{- range $name, $path := $policies }}
policy-{{ $name }}.hcl: |
  {{- $.Files.Get $path | nindent 2 }}
{{- end }}
{{- end }}

{{- define "itsvault.jobName" -}}
{{- printf "%s-%s" .Release.Name (include "itsvault.configData" . | sha256sum | trunc 8) | trunc 63 | trimSuffix "-" }}
{{- end }}


{{/* The program's OpenBao CA (vault.caSecret, key ca.crt), which every client of this chart
     verifies the server with. */}}
{{- define "itsvault.caPath" -}}/etc/its/vault-ca/ca.crt{{- end }}

{{- define "itsvault.caVolume" -}}
- name: vault-ca
  secret:
    secretName: {{ .Values.vault.caSecret }}
    defaultMode: 0444
    items:
      - {key: ca.crt, path: ca.crt}
{{- end }}

{{- define "itsvault.caMount" -}}
- name: vault-ca
  mountPath: {{ include "itsvault.caPath" . | dir }}
  readOnly: true
{{- end }}

{{/* How a `vault`/`bao` CLI of this chart reaches the server: the active address, the CA. */}}
{{- define "itsvault.cliEnv" -}}
{{- $prefix := ternary "BAO" "VAULT" (eq .Values.image.cli "bao") }}
- name: {{ $prefix }}_ADDR
  value: {{ .Values.vault.addr | quote }}
- name: {{ $prefix }}_CACERT
  value: {{ include "itsvault.caPath" . | quote }}
# The image's entrypoint would otherwise try to lock memory and chown /vault.
- name: SKIP_SETCAP
  value: "true"
- name: SKIP_CHOWN
  value: "true"
{{- end }}

{{- define "itsvault.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* The snapshot pods carry the chart's selector labels, so the Job's NetworkPolicy (DNS and
     the API port of OpenBao, no ingress) and OpenBao's admission of this chart's Jobs apply to
     them too; networkpolicy-snapshot.yaml adds their upload. */}}
{{- define "itsvault.snapshotLabels" -}}
{{ include "itsvault.selectorLabels" . }}
app.kubernetes.io/component: snapshot
app.kubernetes.io/part-of: its-camera-ai
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
its.ai/environment: {{ required "environment is required" .Values.environment }}
{{- end }}

{{- define "itsvault.uploaderImage" -}}
{{- $u := .Values.snapshots.uploader }}
{{- if $u.digest }}{{ printf "%s@%s" $u.repository $u.digest }}
{{- else }}{{ printf "%s:%s" $u.repository $u.tag }}{{ end }}
{{- end }}
