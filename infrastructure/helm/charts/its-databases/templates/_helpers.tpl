{{- define "itsdb.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: its-camera-ai
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
its.ai/environment: {{ required "environment is required" .Values.environment }}
{{- end }}

{{- define "itsdb.queriesConfigMap" -}}
{{- printf "%s-exporter-queries" .Values.cluster.name }}
{{- end }}
