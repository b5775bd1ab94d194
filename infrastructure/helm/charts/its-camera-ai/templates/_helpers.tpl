{{/*
Names and labels of the its-camera-ai chart. Every object carries the recommended
app.kubernetes.io labels; selectors use only the stable subset (name, instance, component).
*/}}

{{- define "its.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release-scoped base name: "<release>" when it already holds the chart name. */}}
{{- define "its.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "its.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Name of one component's objects: <fullname>-api, <fullname>-worker, ... (dict "ctx" . "component" "api") */}}
{{- define "its.componentName" -}}
{{- printf "%s-%s" (include "its.fullname" .ctx) .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "its.selectorLabels" -}}
app.kubernetes.io/name: {{ include "its.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "its.labels" -}}
helm.sh/chart: {{ include "its.chart" .ctx }}
{{ include "its.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: its-camera-ai
its.ai/environment: {{ .ctx.Values.environment }}
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Labels of objects that belong to the whole release rather than one component. */}}
{{- define "its.releaseLabels" -}}
helm.sh/chart: {{ include "its.chart" . }}
app.kubernetes.io/name: {{ include "its.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: its-camera-ai
its.ai/environment: {{ .Values.environment }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Service accounts are named after the Vault role they log in as (its-api, its-worker). */}}
{{- define "its.serviceAccountName" -}}
{{- $values := index .ctx.Values .component }}
{{- default $values.vaultRole $values.serviceAccount.name }}
{{- end }}

{{/* How a pod proves its identity to Vault (dict "ctx" . "role" <its Vault role>): the projected
     service-account token Vault's Kubernetes auth takes (short-lived, audience-bound, at the path
     hvac reads, app/common/secrets.py; nothing else is mounted). LOCAL ONLY (platform.local):
     the role's AppRole secret id from the Secret cluster-up made, as the file the app reads. */}}
{{- define "its.vaultLoginVolume" -}}
{{- with .ctx.Values.platform.local }}
- name: vault-approle
  secret:
    secretName: {{ .vault.appRoleSecret }}
    defaultMode: 0440
    items:
      - key: {{ printf "%s.secret-id" $.role }}
        path: secret-id
{{- else }}
- name: vault-token
  projected:
    defaultMode: 0440
    sources:
      - serviceAccountToken:
          path: token
          audience: {{ .ctx.Values.config.vault.tokenAudience | quote }}
          expirationSeconds: 3600
{{- end }}
{{- end }}

{{- define "its.vaultAppRolePath" -}}/var/run/secrets/its/vault-approle{{- end }}

{{- define "its.vaultLoginMount" -}}
{{- if .Values.platform.local }}
- name: vault-approle
  mountPath: {{ include "its.vaultAppRolePath" . }}
  readOnly: true
{{- else }}
- name: vault-token
  mountPath: /var/run/secrets/kubernetes.io/serviceaccount
  readOnly: true
{{- end }}
{{- end }}

{{/* The Vault login settings of one identity (dict "ctx" . "role" <its Vault role>). */}}
{{- define "its.vaultLoginEnv" -}}
- name: ITS_VAULT_ROLE
  value: {{ .role | quote }}
{{- with .ctx.Values.platform.local }}
- name: ITS_VAULT_AUTH_METHOD
  value: "approle"
- name: ITS_VAULT_ROLE_ID
  valueFrom:
    secretKeyRef:
      name: {{ .vault.appRoleSecret }}
      key: {{ printf "%s.role-id" $.role }}
- name: ITS_VAULT_SECRET_ID_FILE
  value: {{ printf "%s/secret-id" (include "its.vaultAppRolePath" $.ctx) | quote }}
{{- else }}
- name: ITS_VAULT_AUTH_METHOD
  value: "kubernetes"
{{- end }}
{{- end }}

{{/* LOCAL ONLY (platform.local): what puts a pod on the local cluster's real node. The RuntimeClass
     is the one the local API server exempts from Pod Security (the host network is outside the
     restricted profile); its scheduling selects the real node and tolerates its taint. The host
     network's loopback is where the local platform listens; there is no cluster DNS. */}}
{{- define "its.localPodSpec" -}}
{{- with .Values.platform.local }}
runtimeClassName: {{ .runtimeClassName }}
hostNetwork: true
dnsPolicy: Default
{{- end }}
{{- end }}

{{/* An httpGet probe's host: the loopback address a pod on the real node listens on (LOCAL ONLY;
     elsewhere the kubelet probes the pod's own address). */}}
{{- define "its.probeHost" -}}
{{- with .Values.platform.local }}
host: {{ .host }}
{{- end }}
{{- end }}

{{/* The port the API listens on, and the worker's metrics port: the chart's, or on the real
     node's host network the local ones (LOCAL ONLY). */}}
{{- define "its.apiPort" -}}
{{- with .Values.platform.local }}{{ .apiPort | int }}{{ else }}{{ .Values.api.port | int }}{{ end }}
{{- end }}

{{- define "its.workerMetricsPort" -}}
{{- with .Values.platform.local }}{{ .workerMetricsPort | int }}{{ else }}{{ .Values.worker.metricsPort | int }}{{ end }}
{{- end }}

{{- define "its.ingestMetricsPort" -}}
{{- with .Values.platform.local }}{{ .ingestMetricsPort | int }}{{ else }}{{ .Values.ingest.metricsPort | int }}{{ end }}
{{- end }}

{{- define "its.pullPolicy" -}}
{{- if .Values.platform.local }}Never{{ else }}{{ .Values.image.pullPolicy }}{{ end }}
{{- end }}

{{/* NetworkPolicy egress rules to the named destinations of .Values.networkPolicy.egress. */}}
{{- define "its.egressRules" -}}
{{- range .names }}
{{- $dest := index $.ctx.Values.networkPolicy.egress . }}
- to:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: {{ $dest.namespace }}
      {{- if $dest.podLabels }}
      podSelector:
        matchLabels:
          {{- toYaml $dest.podLabels | nindent 10 }}
      {{- end }}
  ports:
    {{- range $dest.ports }}
    - port: {{ .port }}
      protocol: {{ .protocol }}
    {{- end }}
{{- end }}
{{- end }}

{{/* image reference: registry/repository:tag, or @digest when a digest is pinned; LOCAL ONLY
     (platform.local), the image built from this checkout that cluster-up imported into the real
     node's containerd (pulled from nowhere: the pull policy is Never there). */}}
{{- define "its.image" -}}
{{- $image := index .ctx.Values.image .component }}
{{- $registry := .ctx.Values.image.registry }}
{{- if .ctx.Values.platform.local }}
{{- index .ctx.Values.platform.local.images .component }}
{{- else if $image.digest }}
{{- printf "%s/%s@%s" $registry $image.repository $image.digest }}
{{- else }}
{{- printf "%s/%s:%s" $registry $image.repository (default .ctx.Chart.AppVersion $image.tag) }}
{{- end }}
{{- end }}

{{/* The restricted container securityContext (Pod Security Standards "restricted"). */}}
{{- define "its.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.podSecurity.runAsUser }}
runAsGroup: {{ .Values.podSecurity.runAsGroup }}
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "its.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.podSecurity.runAsUser }}
runAsGroup: {{ .Values.podSecurity.runAsGroup }}
fsGroup: {{ .Values.podSecurity.runAsGroup }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* The redis master name comes from the shared infrastructure/redis/redis.yaml. */}}
{{- define "its.redisMasterName" -}}
{{- $redis := .Files.Get "files/redis.yaml" | fromYaml }}
{{- required "files/redis.yaml (-> infrastructure/redis/redis.yaml) must define master_name" $redis.master_name }}
{{- end }}

{{/* The kv mount comes from the shared infrastructure/vault/vault.yaml. */}}
{{- define "its.vaultKvMount" -}}
{{- $vault := .Files.Get "files/vault.yaml" | fromYaml }}
{{- required "files/vault.yaml (-> infrastructure/vault/vault.yaml) must define kv_mount" $vault.kv_mount }}
{{- end }}

{{/* Fail the render when a topic the chart names is not defined in infrastructure/kafka/topics.yaml. */}}
{{- define "its.requireTopic" -}}
{{- $topics := .ctx.Files.Get "files/topics.yaml" | fromYaml }}
{{- $found := false }}
{{- range $topics.topics }}
{{- if eq .name $.topic }}{{ $found = true }}{{ end }}
{{- end }}
{{- if not $found }}
{{- fail (printf "topic %q is not defined in infrastructure/kafka/topics.yaml" .topic) }}
{{- end }}
{{- end }}

{{/* How the API and the worker reach Kafka: SCRAM over TLS (the user name and password come
     from Vault, its/<identity>/kafka), trusting the CA of caSecret when one is named. */}}
{{- define "its.kafkaEnv" -}}
- name: ITS_KAFKA_SECURITY_PROTOCOL
  {{- /* LOCAL ONLY: the local brokers' listener is SCRAM over plain loopback. */}}
  value: {{ ternary "SASL_PLAINTEXT" .Values.config.kafka.securityProtocol (not (empty .Values.platform.local)) | quote }}
- name: ITS_KAFKA_SASL_MECHANISM
  value: {{ .Values.config.kafka.saslMechanism | quote }}
{{- if and .Values.config.kafka.caSecret (not .Values.platform.local) }}
- name: ITS_KAFKA_SSL_CA_LOCATION
  value: "/etc/its/kafka-ca/ca.crt"
{{- end }}
{{- end }}

{{- define "its.kafkaCaVolume" -}}
{{- if not .Values.platform.local }}
{{- with .Values.config.kafka.caSecret }}
- name: kafka-ca
  secret:
    secretName: {{ . }}
    defaultMode: 0444
    items:
      - key: ca.crt
        path: ca.crt
{{- end }}
{{- end }}
{{- end }}

{{- define "its.kafkaCaMount" -}}
{{- if and .Values.config.kafka.caSecret (not .Values.platform.local) }}
- name: kafka-ca
  mountPath: /etc/its/kafka-ca
  readOnly: true
{{- end }}
{{- end }}

{{/* PostgreSQL through the Pooler over TLS, verified: asyncpg (and app/common/migrate.py for
     the migrations) read sslmode and sslrootcert from the URL. */}}
{{- define "its.postgresCaPath" -}}/etc/its/postgres-ca/ca.crt{{- end }}

{{- define "its.databaseUrl" -}}
{{- $db := .ctx.Values.config.database }}
{{- with .ctx.Values.platform.local }}
{{- /* LOCAL ONLY: the local platform's PgBouncer, or for the schema owner its primary (that
     PgBouncer admits the app roles only); plain loopback. */}}
{{- printf "postgresql://%s/%s?sslmode=disable" (ternary .database.primary .database.pooler $.schemaOwner) $db.name }}
{{- else }}
{{- printf "postgresql://%s:%d/%s?sslmode=%s&sslrootcert=%s" $db.host (int $db.port) $db.name $db.sslMode (include "its.postgresCaPath" .ctx) }}
{{- end }}
{{- end }}

{{- define "its.postgresCaVolume" -}}
{{- if not .Values.platform.local }}
- name: postgres-ca
  secret:
    secretName: {{ .Values.config.database.caSecret }}
    defaultMode: 0444
    items:
      - key: ca.crt
        path: ca.crt
{{- end }}
{{- end }}

{{- define "its.postgresCaMount" -}}
{{- if not .Values.platform.local }}
- name: postgres-ca
  mountPath: {{ include "its.postgresCaPath" . | dir }}
  readOnly: true
{{- end }}
{{- end }}

{{/* OpenBao over TLS, verified with the CA of config.vault.caSecret (the program's OpenBao CA). */}}
{{- define "its.vaultCaPath" -}}/etc/its/vault-ca/ca.crt{{- end }}

{{- define "its.vaultCaVolume" -}}
{{- if not .Values.platform.local }}
{{- with .Values.config.vault.caSecret }}
- name: vault-ca
  secret:
    secretName: {{ . }}
    defaultMode: 0444
    items:
      - key: ca.crt
        path: ca.crt
{{- end }}
{{- end }}
{{- end }}

{{- define "its.vaultCaMount" -}}
{{- if and .Values.config.vault.caSecret (not .Values.platform.local) }}
- name: vault-ca
  mountPath: {{ include "its.vaultCaPath" . | dir }}
  readOnly: true
{{- end }}
{{- end }}

{{/* MinIO over TLS, verified with the CA of config.minio.caSecret (the program's MinIO CA): the
     API and the worker, the object store's only clients here. LOCAL ONLY (platform.local): none,
     the local object store is plain loopback. */}}
{{- define "its.minioCaPath" -}}/etc/its/minio-ca/ca.crt{{- end }}

{{- define "its.minioCaEnv" -}}
{{- if and .Values.config.minio.caSecret (not .Values.platform.local) }}
- name: ITS_MINIO_CA_FILE
  value: {{ include "its.minioCaPath" . | quote }}
{{- end }}
{{- end }}

{{- define "its.minioCaVolume" -}}
{{- if not .Values.platform.local }}
{{- with .Values.config.minio.caSecret }}
- name: minio-ca
  secret:
    secretName: {{ . }}
    defaultMode: 0444
    items:
      - key: ca.crt
        path: ca.crt
{{- end }}
{{- end }}
{{- end }}

{{- define "its.minioCaMount" -}}
{{- if and .Values.config.minio.caSecret (not .Values.platform.local) }}
- name: minio-ca
  mountPath: {{ include "its.minioCaPath" . | dir }}
  readOnly: true
{{- end }}
{{- end }}

{{/* Environment shared by the API, the worker and the migration Job (ITS_* settings, never a
     secret): dict "ctx" . "role" <the identity's Vault role> ["schemaOwner" true]. LOCAL ONLY
     (platform.local): the local platform's endpoints on loopback, without TLS. */}}
{{- define "its.commonEnv" -}}
{{- $v := .ctx.Values }}
{{- $c := $v.config }}
{{- $local := $v.platform.local }}
- name: ITS_ENVIRONMENT
  value: {{ $v.environment | quote }}
- name: ITS_LOG_LEVEL
  value: {{ $c.logLevel | quote }}
- name: ITS_DATABASE_URL
  value: {{ include "its.databaseUrl" (dict "ctx" .ctx "schemaOwner" (default false .schemaOwner)) | quote }}
- name: ITS_TIMESCALE
  value: {{ include "its.timescaleMode" .ctx | quote }}
- name: ITS_KAFKA_BOOTSTRAP_SERVERS
  value: {{ ternary $local.kafkaBootstrapServers $c.kafka.bootstrapServers (not (empty $local)) | quote }}
- name: ITS_KAFKA_CONSUMER_GROUP
  value: {{ $c.kafka.consumerGroup | quote }}
- name: ITS_REDIS_SENTINELS
  value: {{ join "," (ternary $local.redisSentinels $c.redis.sentinels (not (empty $local))) | quote }}
- name: ITS_REDIS_MASTER_NAME
  value: {{ include "its.redisMasterName" .ctx | quote }}
- name: ITS_MINIO_ENDPOINT
  value: {{ ternary $local.minioEndpoint $c.minio.endpoint (not (empty $local)) | quote }}
- name: ITS_MINIO_SECURE
  value: {{ and $c.minio.secure (empty $local) | quote }}
- name: ITS_VAULT_ADDR
  value: {{ ternary (dig "vault" "addr" "" $local) $c.vault.addr (not (empty $local)) | quote }}
{{- if and $c.vault.caSecret (empty $local) }}
- name: ITS_VAULT_CA_FILE
  value: {{ include "its.vaultCaPath" .ctx | quote }}
{{- end }}
{{- include "its.vaultLoginEnv" . | nindent 0 }}
- name: ITS_VAULT_KV_MOUNT
  value: {{ include "its.vaultKvMount" .ctx | quote }}
{{- /* Images run as a user without a home directory and a read-only root: caches go to /tmp. */}}
- name: HOME
  value: /tmp
{{- end }}

{{/* The largest request body the API reads (ITS_MAX_FRAME_BYTES + ITS_REQUEST_OVERHEAD_BYTES,
     app/common/settings.py max_request_bytes); the ingress's body limit is the same number. */}}
{{- define "its.apiRequestLimit" -}}
{{- add .Values.api.maxFrameBytes .Values.api.requestOverheadBytes }}
{{- end }}

{{/* The Traefik Middlewares the API's router uses, as "<namespace>-<name>@kubernetescrd", comma
     separated; empty when the cluster does not serve traefik.io/v1alpha1 or none is enabled. */}}
{{- define "its.apiMiddlewares" -}}
{{- $ctx := dict "ctx" . "component" "api" }}
{{- $mw := .Values.api.ingress.middlewares }}
{{- $names := list }}
{{- if .Capabilities.APIVersions.Has "traefik.io/v1alpha1" }}
{{- if $mw.rateLimit.enabled }}
{{- $names = append $names (printf "%s-%s-rate-limit@kubernetescrd" .Release.Namespace (include "its.componentName" $ctx)) }}
{{- end }}
{{- if $mw.bodyLimit.enabled }}
{{- $names = append $names (printf "%s-%s-body-limit@kubernetescrd" .Release.Namespace (include "its.componentName" $ctx)) }}
{{- end }}
{{- end }}
{{- join "," $names }}
{{- end }}

{{/* ITS_TIMESCALE of this environment: "on" where its database runs the Timescale image, "off"
     where it runs plain PostgreSQL (infrastructure/database/postgres.yaml). Never "auto" in a
     cluster: a server that lost the extension fails the migration Job instead of switching path. */}}
{{- define "its.timescaleMode" -}}
{{- $pg := .Files.Get "files/postgres.yaml" | fromYaml }}
{{- $path := required (printf "files/postgres.yaml (-> infrastructure/database/postgres.yaml): environments has no %q" .Values.environment) (get (default dict $pg.environments) .Values.environment) }}
{{- ternary "on" "off" (eq $path "timescale") }}
{{- end }}

{{/* A component's PodDisruptionBudget (dict "ctx" . "component" "worker"), from its pdb values. */}}
{{- define "its.pdb" -}}
{{- $ctx := . }}
{{- $pdb := (index .ctx.Values .component).pdb }}
{{- if $pdb.enabled }}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "its.componentName" $ctx }}
  namespace: {{ .ctx.Release.Namespace }}
  labels:
    {{- include "its.labels" $ctx | nindent 4 }}
spec:
  maxUnavailable: {{ $pdb.maxUnavailable }}
  selector:
    matchLabels:
      {{- include "its.selectorLabels" $ctx | nindent 6 }}
{{- end }}
{{- end }}

{{/* The Service of a component that serves only metrics and health (the worker, the ingest):
     what its ServiceMonitor selects. */}}
{{- define "its.metricsService" -}}
{{- $ctx := . }}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "its.componentName" $ctx }}
  namespace: {{ .ctx.Release.Namespace }}
  labels:
    {{- include "its.labels" $ctx | nindent 4 }}
spec:
  type: ClusterIP
  selector:
    {{- include "its.selectorLabels" $ctx | nindent 4 }}
  ports:
    - name: metrics
      port: {{ (index .ctx.Values .component).metricsPort }}
      targetPort: metrics
      protocol: TCP
{{- end }}

{{/* A component's ServiceMonitor (dict "ctx" . "component" "worker" "port" "metrics"), rendered
     only where the Prometheus operator's API is served. */}}
{{- define "its.serviceMonitor" -}}
{{- $ctx := . }}
{{- $values := .ctx.Values }}
{{- if and $values.serviceMonitor.enabled (.ctx.Capabilities.APIVersions.Has "monitoring.coreos.com/v1") }}
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: {{ include "its.componentName" $ctx }}
  namespace: {{ .ctx.Release.Namespace }}
  labels:
    {{- include "its.labels" $ctx | nindent 4 }}
    {{- with $values.serviceMonitor.labels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  selector:
    matchLabels:
      {{- include "its.selectorLabels" $ctx | nindent 6 }}
  namespaceSelector:
    matchNames: [{{ .ctx.Release.Namespace }}]
  endpoints:
    - port: {{ .port }}
      path: /metrics
      interval: {{ $values.serviceMonitor.interval }}
      scrapeTimeout: {{ $values.serviceMonitor.scrapeTimeout }}
{{- end }}
{{- end }}
