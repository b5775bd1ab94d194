{{/*
Helpers of the minio namespace's NetworkPolicies (networkpolicy-minio.yaml, values networkPolicy.*).
*/}}

{{/* Metadata of one NetworkPolicy: (dict "ctx" . "name" "minio-from-app" "wave" "-2"). The
     policies that admit a flow sync in wave -2, the namespace's default deny in wave -1: no
     flow is cut while they are being created. */}}
{{- define "itsminio.networkPolicyMetadata" -}}
name: {{ printf "%s-%s" .ctx.Release.Name .name | trunc 63 | trimSuffix "-" }}
namespace: {{ .ctx.Release.Namespace }}
labels:
  {{- include "itsminio.labels" .ctx | nindent 2 }}
annotations:
  argocd.argoproj.io/sync-wave: {{ .wave | quote }}
{{- end }}

{{/* Ingress peers from a list of {namespace, podLabels}: the pods of that namespace carrying
     those labels (every pod of it when podLabels is empty). Never called with an empty list:
     a rule without peers would admit every source. */}}
{{- define "itsminio.peers" -}}
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

{{/* One NetworkPolicy admitting `peers` to the MinIO servers' S3 port:
     (dict "ctx" . "name" "minio-from-app" "peers" <rendered peer list>). */}}
{{- define "itsminio.serverPolicy" -}}
{{- $np := .ctx.Values.networkPolicy -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  {{- include "itsminio.networkPolicyMetadata" (dict "ctx" .ctx "name" .name "wave" "-2") | nindent 2 }}
spec:
  podSelector:
    matchLabels:
      {{- toYaml $np.server.podLabels | nindent 6 }}
  policyTypes: [Ingress]
  ingress:
    - from:
        {{- .peers | trim | nindent 8 }}
      ports:
        - port: {{ $np.server.port }}
          protocol: TCP
{{- end }}
