{{/*
Helpers of the monitoring namespace's NetworkPolicies (networkpolicy-monitoring.yaml, values
networkPolicy.*).
*/}}

{{/* Metadata of one NetworkPolicy: (dict "ctx" . "name" "same-namespace" "wave" "-2"). The
     policies that admit a flow sync in wave -2, the namespace's default deny in wave -1: no
     flow is cut while they are being created. */}}
{{- define "itsmon.networkPolicyMetadata" -}}
name: {{ printf "%s-%s" .ctx.Release.Name .name | trunc 63 | trimSuffix "-" }}
namespace: {{ .ctx.Release.Namespace }}
labels:
  {{- include "itsmon.labels" .ctx | nindent 2 }}
annotations:
  argocd.argoproj.io/sync-wave: {{ .wave | quote }}
{{- end }}
