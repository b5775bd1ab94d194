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

{{/* The PostgreSQL server of this environment (infrastructure/database/postgres.yaml): its
     storage path, the image of that path and the clusters' major, as YAML. */}}
{{- define "itsdb.server" -}}
{{- $pg := .Files.Get "files/postgres.yaml" | fromYaml }}
{{- if or (hasKey $pg "Error") (not $pg.major) }}
{{- fail "files/postgres.yaml (-> infrastructure/database/postgres.yaml) is missing or has no major" }}
{{- end }}
{{- $path := required (printf "files/postgres.yaml: environments has no %q" .Values.environment) (get $pg.environments .Values.environment) }}
{{- $image := required (printf "files/postgres.yaml: images has no %q" $path) (get $pg.images $path) }}
{{- dict "path" $path "major" $pg.major "image" $image | toYaml }}
{{- end }}

{{/* The image reference a pod pulls: by digest when the fact file knows one. */}}
{{- define "itsdb.imageReference" -}}
{{- if .digest }}{{ printf "%s@%s" .image .digest }}{{ else }}{{ .image }}{{ end }}
{{- end }}
