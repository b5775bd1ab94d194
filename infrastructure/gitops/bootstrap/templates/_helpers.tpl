{{/*
bootstrap.application renders one Application.
  .ctx        the root context
  .name       Application name
  .namespace  destination namespace
  .wave       sync wave
  .class      stateless | operator | stateful (.Values.syncClasses)
  .sources    list of ArgoCD sources (the `ref: values` source is appended here)
  .syncOptions extra sync options
  .namespaceLabels labels of the created namespace
*/}}
{{- define "bootstrap.application" -}}
{{- $v := .ctx.Values }}
{{- $class := required (printf "%s: no sync class" .name) (get $v.syncClasses .class) }}
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: {{ .name }}
  namespace: {{ $v.argocdNamespace }}
  labels:
    app.kubernetes.io/part-of: its-camera-ai
    app.kubernetes.io/managed-by: its-bootstrap
    its.ai/environment: {{ required "environment is required" $v.environment }}
    its.ai/sync-class: {{ .class }}
  annotations:
    argocd.argoproj.io/sync-wave: {{ .wave | quote }}
    {{- if $class.protect }}
    # Never pruned or deleted by the app of apps: removing it from Git leaves it, and its
    # StatefulSets and volumes, in place (docs/runbooks/gitops.md, "Prune protection").
    argocd.argoproj.io/sync-options: Prune=false,Delete=false
    {{- end }}
  {{- if not $class.protect }}
  # Deleting this Application deletes what it deployed (nothing stateful).
  finalizers:
    - resources-finalizer.argocd.argoproj.io
  {{- end }}
spec:
  project: {{ $v.project }}
  destination:
    server: {{ $v.destinationServer }}
    namespace: {{ .namespace }}
  sources:
    {{- toYaml .sources | nindent 4 }}
    - repoURL: {{ $v.repoURL }}
      targetRevision: {{ $v.targetRevision | quote }}
      ref: values
  syncPolicy:
    automated:
      prune: {{ $class.automated.prune }}
      selfHeal: {{ $class.automated.selfHeal }}
    syncOptions:
      - CreateNamespace=true
      - PruneLast=true
      {{- range .syncOptions }}
      - {{ . }}
      {{- end }}
    {{- with .namespaceLabels }}
    managedNamespaceMetadata:
      labels:
        {{- toYaml . | nindent 8 }}
    {{- end }}
    retry:
      {{- toYaml $v.retry | nindent 6 }}
  revisionHistoryLimit: 10
{{- end }}

{{/* One Application for a chart of this repository (its name is the template's file name). */}}
{{- define "bootstrap.repoChart" -}}
{{- $v := .ctx.Values }}
{{- $chart := required (printf "charts.%s is not defined" .name) (get $v.charts .name) }}
{{- if $chart.enabled }}
{{- $source := dict
      "repoURL" $v.repoURL
      "targetRevision" $v.targetRevision
      "path" (printf "infrastructure/helm/charts/%s" .name)
      "helm" (dict
        "releaseName" .name
        "valueFiles" (list (printf "$values/infrastructure/gitops/envs/%s/values/%s.yaml" $v.environment .name))) }}
{{- if $chart.platformValues }}
{{- /* The program's outputs (root Application's `platform`), as the chart's `platform` value. */}}
{{- $_ := set $source.helm "valuesObject" (dict "platform" $v.platform) }}
{{- end }}
{{- include "bootstrap.application" (dict
      "ctx" .ctx "name" .name "namespace" $chart.namespace "wave" $chart.syncWave "class" $chart.class
      "sources" (list $source) "syncOptions" ($chart.syncOptions | default list)
      "namespaceLabels" ($chart.namespaceLabels | default dict)) }}
{{- end }}
{{- end }}
