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
weft.config: .Values.config with the files of the mounted secrets set, as
the YAML weft reads. Refuses passwords in the config: they belong in
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
