{{- define "itsminio.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: its-camera-ai
app.kubernetes.io/component: provisioner
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
its.ai/environment: {{ required "environment is required" .Values.environment }}
{{- end }}

{{- define "itsminio.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "itsminio.image" -}}
{{- if .Values.image.digest }}{{ printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}{{ printf "%s:%s" .Values.image.repository .Values.image.tag }}{{ end }}
{{- end }}

{{/* The shared definitions, parsed once; a missing or broken file fails the render. */}}
{{- define "itsminio.spec" -}}
{{- $spec := .Files.Get "files/buckets.yaml" | fromYaml }}
{{- if or (hasKey $spec "Error") (not $spec.buckets) }}
{{- fail "files/buckets.yaml (-> infrastructure/minio/buckets.yaml) is missing or has no buckets" }}
{{- end }}
{{- toJson $spec }}
{{- end }}

{{/* S3 lifecycle configuration (the JSON `mc ilm import` reads) of one bucket. */}}
{{- define "itsminio.lifecycle" -}}
{{- $rules := list }}
{{- range .lifecycle }}
{{- $rule := dict "ID" .id "Status" "Enabled" "Filter" (dict "Prefix" (.prefix | default "")) }}
{{- if hasKey . "expiration_days" }}{{ $_ := set $rule "Expiration" (dict "Days" .expiration_days) }}{{ end }}
{{- if hasKey . "noncurrent_expiration_days" }}{{ $_ := set $rule "NoncurrentVersionExpiration" (dict "NoncurrentDays" .noncurrent_expiration_days) }}{{ end }}
{{- $rules = append $rules $rule }}
{{- end }}
{{- dict "Rules" $rules | toJson }}
{{- end }}

{{- define "itsminio.configData" -}}
{{- $spec := include "itsminio.spec" . | fromJson }}
apply.sh: |
  #!/bin/sh
  # Generated from infrastructure/minio/buckets.yaml by the its-minio-buckets chart.
  set -eu
  export HOME=/tmp MC_CONFIG_DIR=/tmp/.mc
  {{- if .Values.minio.caSecret }}
  # mc trusts the CAs of its config directory's certs/CAs (MinIO's private CA).
  mkdir -p "$MC_CONFIG_DIR/certs/CAs" && cp /etc/its/minio-ca/ca.crt "$MC_CONFIG_DIR/certs/CAs/"
  {{- end }}
  mc alias set its "$MINIO_ENDPOINT" "$(cat /secrets/root/access-key)" "$(cat /secrets/root/secret-key)" >/dev/null
  {{- range $spec.buckets }}
  echo "bucket {{ .name }}"
  {{- if .object_lock }}
  # Object lock exists only if the bucket is made with it; then every version keeps its retention.
  mc mb --ignore-existing --with-lock its/{{ .name }}
  mc retention set --default {{ .object_lock.mode }} {{ .object_lock.days }}d its/{{ .name }}
  {{- else }}
  mc mb --ignore-existing its/{{ .name }}
  {{- end }}
  {{- if .versioning }}
  mc version enable its/{{ .name }}
  {{- end }}
  {{- if .lifecycle }}
  mc ilm import its/{{ .name }} < /config/lifecycle-{{ .name }}.json
  {{- end }}
  mc anonymous set none its/{{ .name }}
  {{- end }}
  {{- range $path, $_ := $.Files.Glob "files/policies/*.json" }}
  mc admin policy create its {{ base $path | trimSuffix ".json" }} /config/policy-{{ base $path }}
  {{- end }}
  {{- if $.Values.users.enabled }}
  {{- range $spec.users }}
  if [ -s /secrets/users/{{ .name }} ]; then
    mc admin user add its {{ .name }} "$(cat /secrets/users/{{ .name }})"
    mc admin policy attach its {{ .policy }} --user {{ .name }} 2>/dev/null || echo "policy {{ .policy }} already attached to {{ .name }}"
  else
    echo "user {{ .name }}: Secret {{ $.Values.users.secretPrefix }}{{ .name }} not found, skipped"
  fi
  {{- end }}
  {{- end }}
  echo "done"
{{- range $spec.buckets }}
{{- if .lifecycle }}
lifecycle-{{ .name }}.json: {{ include "itsminio.lifecycle" . | quote }}
{{- end }}
{{- end }}
{{- range $path, $_ := .Files.Glob "files/policies/*.json" }}
{{- $policy := $.Files.Get $path }}
{{- if hasKey ($policy | fromJson) "Error" }}{{ fail (printf "%s is not valid JSON" $path) }}{{ end }}
policy-{{ base $path }}: {{ $policy | fromJson | toJson | quote }}
{{- end }}
{{- end }}

{{/* Jobs are immutable: the name carries a hash of what they apply, so a change runs anew. */}}
{{- define "itsminio.jobName" -}}
{{- printf "%s-%s" .Release.Name (include "itsminio.configData" . | sha256sum | trunc 8) | trunc 63 | trimSuffix "-" }}
{{- end }}
