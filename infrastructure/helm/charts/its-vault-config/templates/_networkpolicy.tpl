{{/*
Helpers of the vault namespace's NetworkPolicies (networkpolicy-vault.yaml, values networkPolicy.*).
*/}}

{{/* Metadata of one NetworkPolicy: (dict "ctx" . "name" "openbao-from-app" "wave" "-2"). The
     policies that admit a flow sync in wave -2, the namespace's default deny in wave -1: no
     flow is cut while they are being created. */}}
{{- define "itsvault.networkPolicyMetadata" -}}
name: {{ printf "%s-%s" .ctx.Release.Name .name | trunc 63 | trimSuffix "-" }}
namespace: {{ .ctx.Release.Namespace }}
labels:
  {{- include "itsvault.labels" .ctx | nindent 2 }}
annotations:
  argocd.argoproj.io/sync-wave: {{ .wave | quote }}
{{- end }}

{{/* Ingress peers from a list of {namespace, podLabels}: the pods of that namespace carrying
     those labels (every pod of it when podLabels is empty). Never called with an empty list:
     a rule without peers would admit every source. */}}
{{- define "itsvault.peers" -}}
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

{{/* One NetworkPolicy admitting `peers` (rendered peer list) to the pods labelled `podLabels`
     on `ports`: (dict "ctx" . "name" N "podLabels" L "peers" P "ports" (list 8200)). With
     "anywhere" true and no peers, the rule admits every source on those ports only. */}}
{{- define "itsvault.policy" -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  {{- include "itsvault.networkPolicyMetadata" (dict "ctx" .ctx "name" .name "wave" "-2") | nindent 2 }}
spec:
  podSelector:
    matchLabels:
      {{- toYaml .podLabels | nindent 6 }}
  policyTypes: [Ingress]
  ingress:
    {{- if .anywhere }}
    - ports:
    {{- else }}
    - from:
        {{- required (printf "%s: no peers" .name) .peers | trim | nindent 8 }}
      ports:
    {{- end }}
        {{- range .ports }}
        - port: {{ . }}
          protocol: TCP
        {{- end }}
{{- end }}
