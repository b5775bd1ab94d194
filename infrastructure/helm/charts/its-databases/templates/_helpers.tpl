{{- define "itsdb.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: its-camera-ai
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
its.ai/environment: {{ required "environment is required" .Values.environment }}
{{- end }}

{{/* The program's backup settings (.Values.platform.postgresBackup), or a failure naming them:
     a database with backups on must never render without a place to send them. */}}
{{- define "itsdb.postgresBackup" -}}
{{- $b := .Values.platform.postgresBackup }}
{{- if not (and $b.bucket $b.region $b.roleArn) }}
{{- fail "backup.enabled needs platform.postgresBackup.bucket, .region and .roleArn: the Pulumi program passes them through the root Application (docs/runbooks/gitops.md, \"Values from the program\")" }}
{{- end }}
{{- toYaml $b }}
{{- end }}

{{/* files/recovery.yaml (-> infrastructure/database/recovery.yaml): RPO and recovery window. */}}
{{- define "itsdb.recovery" -}}
{{- $r := .Files.Get "files/recovery.yaml" | fromYaml }}
{{- if or (hasKey $r "Error") (not $r.rpo_minutes) (not $r.retention_days) }}
{{- fail "files/recovery.yaml (-> infrastructure/database/recovery.yaml) is missing or incomplete" }}
{{- end }}
{{- toYaml $r }}
{{- end }}

{{- define "itsdb.queriesConfigMap" -}}
{{- printf "%s-exporter-queries" .Values.cluster.name }}
{{- end }}
