{{/* Names, labels and the rendered config of the weft chart. */}}

{{- define "weft.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "weft.fullname" -}}
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

{{- define "weft.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "weft.selectorLabels" -}}
app.kubernetes.io/name: {{ include "weft.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "weft.labels" -}}
helm.sh/chart: {{ include "weft.chart" . }}
{{ include "weft.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: weft
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "weft.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "weft.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "weft.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{- define "weft.secretName" -}}
{{- printf "%s-secrets" (include "weft.fullname" .) }}
{{- end }}

{{/*
weft.secretRefs: the secrets weft reads, as JSON {item: {name, key, env |
file}}, for those configured. A value with no existingSecret goes into the
chart's own Secret under the item's key.
*/}}
{{- define "weft.secretRefs" -}}
{{- $refs := dict }}
{{- $kinds := dict
  "kafka" (dict "env" "WEFT_KAFKA_SASL_PASSWORD")
  "replayKafka" (dict "env" "WEFT_REPLAY_KAFKA_SASL_PASSWORD")
  "clickhouse" (dict "env" "WEFT_CLICKHOUSE_PASSWORD")
  "auditSigningKey" (dict "file" "audit-signing-key")
  "auditSourceKey" (dict "file" "audit-source-key")
  "tracingIdKey" (dict "file" "tracing-id-key")
  "apiTokens" (dict "file" "api-tokens") }}
{{- range $item, $kind := $kinds }}
{{- $s := get $.Values.secrets $item }}
{{- $ref := dict }}
{{- if $s.existingSecret }}
{{- $ref = dict "name" $s.existingSecret "key" $s.key }}
{{- else if or $s.value $s.tokens }}
{{- $ref = dict "name" (include "weft.secretName" $) "key" (printf "%s-%s" $item $s.key) "created" true }}
{{- end }}
{{- if $ref }}
{{- $ref = merge $ref $kind }}
{{- if hasKey $kind "file" }}
{{- $_ := set $ref "path" (printf "/etc/weft/secrets/%s/%s" $kind.file $s.key) }}
{{- end }}
{{- $_ := set $refs $item $ref }}
{{- end }}
{{- end }}
{{- toJson $refs }}
{{- end }}

{{/*
weft.config: .Values.config with the files of the mounted secrets and
clickhouse.migrate set (weft.migrateMode), as the YAML weft reads. Refuses passwords in the config: they belong in
Secrets, and the ConfigMap is readable by whoever may read the namespace's
ConfigMaps.
*/}}
{{- define "weft.config" -}}
{{- $cfg := deepCopy (.Values.config | default dict) }}
{{- $refs := include "weft.secretRefs" . | fromJson }}
{{- range $path := list "kafka.sasl.password" "clickhouse.password" "replay.kafka.sasl.password" }}
{{- $v := $cfg }}
{{- range $k := splitList "." $path }}
{{- if kindIs "map" $v }}{{ $v = get $v $k }}{{ else }}{{ $v = "" }}{{ end }}
{{- end }}
{{- if $v }}
{{- fail (printf "config.%s: put the password in a Secret (the chart's secrets block), not in the config: the ConfigMap is not secret" $path) }}
{{- end }}
{{- end }}
{{- if not (kindIs "map" (get $cfg "clickhouse")) }}
{{- $_ := set $cfg "clickhouse" dict }}
{{- end }}
{{- $_ := set (get $cfg "clickhouse") "migrate" (include "weft.migrateMode" .) }}
{{- $files := dict
  "apiTokens" (list "http" "auth" "tokens_file")
  "auditSigningKey" (list "audit" "signing_key_file")
  "auditSourceKey" (list "audit" "source_key_file")
  "tracingIdKey" (list "tracing" "id_key_file") }}
{{- range $item, $keys := $files }}
{{- with get $refs $item }}
{{- $m := $cfg }}
{{- range $k := initial $keys }}
{{- if not (kindIs "map" (get $m $k)) }}
{{- $_ := set $m $k dict }}
{{- end }}
{{- $m = get $m $k }}
{{- end }}
{{- $_ := set $m (last $keys) .path }}
{{- end }}
{{- end }}
{{- toYaml $cfg }}
{{- end }}

{{/* weft.httpPort: the port of config.http.listen. */}}
{{- define "weft.httpPort" -}}
{{- $listen := dig "http" "listen" "" (.Values.config | default dict) }}
{{- if not $listen }}
{{- fail "config.http.listen: required in Kubernetes (probes, the Service and Prometheus use it), e.g. 0.0.0.0:8080" }}
{{- end }}
{{- $port := splitList ":" $listen | last }}
{{- if not (regexMatch "^[0-9]+$" $port) }}
{{- fail (printf "config.http.listen: %q has no port" $listen) }}
{{- end }}
{{- $port }}
{{- end }}

{{/* weft.httpScheme: HTTPS when weft serves TLS (config.http.tls). */}}
{{- define "weft.httpScheme" -}}
{{- if dig "http" "tls" "cert_file" "" (.Values.config | default dict) }}HTTPS{{ else }}HTTP{{ end }}
{{- end }}

{{/* weft.secretRefsCreated: non-empty when the chart makes its own Secret. */}}
{{- define "weft.secretRefsCreated" -}}
{{- range $item, $ref := include "weft.secretRefs" . | fromJson }}{{ if $ref.created }}true{{ end }}{{ end }}
{{- end }}

{{/* weft.secretFiles: non-empty when a secret is mounted as a file. */}}
{{- define "weft.secretFiles" -}}
{{- range $item, $ref := include "weft.secretRefs" . | fromJson }}{{ if $ref.file }}true{{ end }}{{ end }}
{{- end }}

{{/*
weft.secretEnv: the container environment of the secrets weft reads as
variables, for refs (a dict of weft.secretRefs's form).
*/}}
{{- define "weft.secretEnv" -}}
{{- range $item, $ref := . }}
{{- if $ref.env }}
- name: {{ $ref.env }}
  valueFrom:
    secretKeyRef:
      name: {{ $ref.name }}
      key: {{ $ref.key }}
{{- end }}
{{- end }}
{{- end }}

{{/*
weft.secretData: the data of a Secret the chart makes, as JSON {key:
value}: the values of those refs (a dict of weft.secretRefs's form) that the
chart creates. Context: dict "root" $ "refs" refs.
*/}}
{{- define "weft.secretData" -}}
{{- $data := dict }}
{{- range $item, $ref := .refs }}
{{- if $ref.created }}
{{- $s := get $.root.Values.secrets $item }}
{{- if eq $item "apiTokens" }}
{{- $_ := set $data $ref.key (toYaml $s.tokens) }}
{{- else }}
{{- $_ := set $data $ref.key $s.value }}
{{- end }}
{{- end }}
{{- end }}
{{- toJson $data }}
{{- end }}

{{/* weft.scheduling: where a pod of the chart may run (nodeSelector, affinity, tolerations). */}}
{{- define "weft.scheduling" -}}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
weft.egressRules: NetworkPolicy egress rules to DNS and to each of names
(kafka, clickhouse) at networkPolicy.egress.<name>. Context: dict "root" $
"names" (list ...).
*/}}
{{- define "weft.egressRules" -}}
# DNS
- ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
{{- range $name := .names }}
{{- $e := get $.root.Values.networkPolicy.egress $name }}
# {{ $name }}
- ports:
    {{- range $e.ports }}
    - port: {{ . }}
      protocol: TCP
    {{- end }}
  {{- with $e.to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- end }}

{{/*
weft.migrateMode: clickhouse.migrate of the rendered config. With the
migration Job, external whatever config says: the Job applies schema
changes once, before the pods roll, and the pods only check (N replicas
never race). Without it, config's value, or startup (each pod applies what
is pending as it starts).
*/}}
{{- define "weft.migrateMode" -}}
{{- if .Values.migrations.job.enabled }}
{{- "external" }}
{{- else }}
{{- dig "clickhouse" "migrate" "" (.Values.config | default dict) | default "startup" }}
{{- end }}
{{- end }}

{{/* weft.migrateName: the migration Job and its hook ConfigMap, Secret and NetworkPolicy. */}}
{{- define "weft.migrateName" -}}
{{- printf "%s-migrate" (include "weft.fullname" . | trunc 55 | trimSuffix "-") }}
{{- end }}

{{/*
weft.migrateSelectorLabels: the labels of the migration Job's pod: not
weft.selectorLabels, so that the Service, the PodDisruptionBudget and the
NetworkPolicy of weft's pods do not select it.
*/}}
{{- define "weft.migrateSelectorLabels" -}}
app.kubernetes.io/name: {{ printf "%s-migrate" (include "weft.name" . | trunc 55 | trimSuffix "-") }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: migrate
{{- end }}

{{/* weft.migrateHook: the annotations of a migration hook object of weight w. Context: dict "weight" w. */}}
{{- define "weft.migrateHook" -}}
helm.sh/hook: pre-install,pre-upgrade
helm.sh/hook-weight: {{ .weight | quote }}
helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
{{- end }}

{{/*
weft.migrateConfig: what `weft migrate` reads: the log and clickhouse
blocks of weft.config, nothing that needs other secrets or files.
*/}}
{{- define "weft.migrateConfig" -}}
{{- toYaml (pick (include "weft.config" . | fromYaml) "log" "clickhouse") }}
{{- end }}

{{/*
weft.migrateSecretRefs: the secrets the migration Job reads (ClickHouse's
password), in weft.secretRefs's form; one the chart creates comes from the
Job's own hook Secret, as the release's does not exist before install.
*/}}
{{- define "weft.migrateSecretRefs" -}}
{{- $refs := include "weft.secretRefs" . | fromJson }}
{{- $out := dict }}
{{- with $refs.clickhouse }}
{{- if .created }}
{{- $_ := set . "name" (include "weft.migrateName" $) }}
{{- end }}
{{- $_ := set $out "clickhouse" . }}
{{- end }}
{{- toJson $out }}
{{- end }}

{{/*
weft.configMap: a ConfigMap of weft.yaml. Context: dict "root" $ "name"
name "config" yaml, and "hook" annotations (weft.migrateHook) for a hook
object.
*/}}
{{- define "weft.configMap" -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .name }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "weft.labels" .root | nindent 4 }}
  {{- with .hook }}
  annotations:
    {{- . | nindent 4 }}
  {{- end }}
data:
  weft.yaml: |
    {{- .config | nindent 4 }}
{{- end }}

{{/*
weft.secret: an Opaque Secret of data (weft.secretData). Context: dict
"root" $ "name" name "data" data, and "hook" annotations for a hook object.
*/}}
{{- define "weft.secret" -}}
apiVersion: v1
kind: Secret
metadata:
  name: {{ .name }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "weft.labels" .root | nindent 4 }}
  {{- with .hook }}
  annotations:
    {{- . | nindent 4 }}
  {{- end }}
type: Opaque
data:
  {{- range $key, $value := .data }}
  {{ $key }}: {{ $value | b64enc | quote }}
  {{- end }}
{{- end }}
