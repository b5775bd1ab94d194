{{/*
Helpers of this chart's NetworkPolicies (networkpolicy-*.yaml, values networkPolicy.*).
*/}}

{{/* The Pooler's name: the Pooler object, its Service (the app's database host) and the
     cnpg.io/poolerName label of its pods. */}}
{{- define "itsdb.poolerName" -}}
{{- printf "%s-pooler-rw" .Values.cluster.name }}
{{- end }}

{{/* The PostgreSQL instance pods of the Cluster (CloudNativePG labels). The Pooler's pods carry
     cnpg.io/cluster as well: cnpg.io/podRole tells them apart. */}}
{{- define "itsdb.instanceLabels" -}}
cnpg.io/cluster: {{ .Values.cluster.name }}
cnpg.io/podRole: instance
{{- end }}

{{/* The PgBouncer pods of the Pooler. */}}
{{- define "itsdb.poolerLabels" -}}
cnpg.io/poolerName: {{ include "itsdb.poolerName" . }}
{{- end }}

{{/* Metadata of one NetworkPolicy: (dict "ctx" . "name" "postgres-from-pooler" "wave" "-2").
     The policies that admit a flow sync in wave -2, the namespace's default deny in wave -1:
     no flow is cut while they are being created. */}}
{{- define "itsdb.networkPolicyMetadata" -}}
name: {{ printf "%s-%s" .ctx.Release.Name .name | trunc 63 | trimSuffix "-" }}
namespace: {{ .ctx.Release.Namespace }}
labels:
  {{- include "itsdb.labels" .ctx | nindent 2 }}
annotations:
  argocd.argoproj.io/sync-wave: {{ .wave | quote }}
{{- end }}

{{/* Ingress peers from a list of {namespace, podLabels}: the pods of that namespace carrying
     those labels (every pod of it when podLabels is empty). Never called with an empty list:
     a rule without peers would admit every source. */}}
{{- define "itsdb.peers" -}}
{{- range . }}
- namespaceSelector:
    matchLabels:
      kubernetes.io/metadata.name: {{ .namespace }}
  {{- with .podLabels }}
  podSelector:
    matchLabels:
      {{- toYaml . | nindent 6 }}
  {{- end }}
{{- end }}
{{- end }}

{{/* TCP ports from a list of port numbers. */}}
{{- define "itsdb.ports" -}}
{{- range . }}
- port: {{ . }}
  protocol: TCP
{{- end }}
{{- end }}
