{{- /* Names, labels and small computed values shared by the templates. */}}

{{- /* The chart name, or nameOverride; the app.kubernetes.io/name label. */}}
{{- define "idmount.name" -}}
{{- .Values.nameOverride | default .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- /* <release>-<name> (or the release alone when it already contains the name), or fullnameOverride. */}}
{{- define "idmount.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := include "idmount.name" . }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "idmount.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- /* Selector labels: name and instance only, so they never change across upgrades. */}}
{{- define "idmount.selectorLabels" -}}
app.kubernetes.io/name: {{ include "idmount.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "idmount.labels" -}}
helm.sh/chart: {{ include "idmount.chart" . }}
{{ include "idmount.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/component: server
app.kubernetes.io/part-of: jupyterhub
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "idmount.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- .Values.serviceAccount.name | default (include "idmount.fullname" .) }}
{{- else }}
{{- .Values.serviceAccount.name | default "default" }}
{{- end }}
{{- end }}

{{- /* The Secret mounted at secrets.mountPath: yours (existingSecret) or the chart's; empty for none. */}}
{{- define "idmount.secretName" -}}
{{- if .Values.secrets.existingSecret }}
{{- .Values.secrets.existingSecret }}
{{- else if .Values.secrets.files }}
{{- include "idmount.fullname" . }}
{{- end }}
{{- end }}

{{- /* The container listens here; the config's server.port is forced to it. */}}
{{- define "idmount.containerPort" -}}
8080
{{- end }}

{{- /*
  The config file: .Values.config with server.host/port forced to what the pod needs. Fails with
  the key to set when no config is given.
*/}}
{{- define "idmount.configYaml" -}}
{{- if not .Values.config }}
{{- fail "\n\nconfig: required. Set `config` to your idmount configuration (sources, auth, home, data); see the chart's ci/*-values.yaml for examples." }}
{{- end }}
{{- if not (kindIs "map" .Values.config) }}
{{- fail "\n\nconfig: expected a map (the idmount YAML itself), not a string." }}
{{- end }}
{{- $config := deepCopy (.Values.config | default dict) }}
{{- $server := get $config "server" | default dict }}
{{- $_ := set $server "host" "0.0.0.0" }}
{{- $_ := set $server "port" (include "idmount.containerPort" . | int) }}
{{- $_ := set $config "server" $server }}
{{- with .Values.sharedCache.url }}
{{- $cache := get $config "cache" | default dict }}
{{- if hasKey $cache "shared" }}
{{- fail "\n\nsharedCache.url: the config has cache.shared too; set the shared tier in one place (sharedCache, so the chart mounts its Secret and opens its port)." }}
{{- end }}
{{- $shared := dict "url" . "keyPrefix" ($.Values.sharedCache.keyPrefix | default (printf "%s:" (include "idmount.fullname" $))) }}
{{- with $.Values.sharedCache.username }}{{ $_ := set $shared "username" . }}{{ end }}
{{- if $.Values.sharedCache.existingSecret }}
{{- $_ := set $shared "passwordFile" (printf "%s/%s" (include "idmount.sharedCacheMountPath" $) $.Values.sharedCache.passwordKey) }}
{{- end }}
{{- with $.Values.sharedCache.caKey }}
{{- if not $.Values.sharedCache.existingSecret }}
{{- fail "\n\nsharedCache.caKey: names a key of sharedCache.existingSecret; set that Secret too." }}
{{- end }}
{{- if not (hasPrefix "rediss://" $.Values.sharedCache.url) }}
{{- fail "\n\nsharedCache.caKey: a CA is only used with TLS; use a rediss:// url." }}
{{- end }}
{{- $_ := set $shared "tls" (dict "caFile" (printf "%s/%s" (include "idmount.sharedCacheMountPath" $) .)) }}
{{- end }}
{{- $_ := set $cache "shared" $shared }}
{{- $_ := set $config "cache" $cache }}
{{- end }}
{{- toYaml $config }}
{{- end }}

{{- /* Where sharedCache.existingSecret's keys appear as files. */}}
{{- define "idmount.sharedCacheMountPath" -}}
/etc/idmount/shared-cache
{{- end }}

{{- /* The port of sharedCache.url (6379 unless the URL names one). */}}
{{- define "idmount.sharedCachePort" -}}
{{- $host := (urlParse .Values.sharedCache.url).host }}
{{- regexFind ":[0-9]+$" $host | trimPrefix ":" | default "6379" }}
{{- end }}

{{- /*
  Ports of the directories the config names (one per line, "port/TCP"): every source's urls, url
  and issuer, and auth.oidc's issuer and jwksUri. ldap 389, ldaps 636, http 80, https 443 unless
  the URL names a port.
*/}}
{{- define "idmount.directoryPorts" -}}
{{- $urls := list }}
{{- $config := .Values.config | default dict }}
{{- range $source := ($config.sources | default list) }}
{{- if kindIs "map" $source }}
{{- range $key := list "urls" "url" "issuer" }}
{{- $value := get $source $key }}
{{- if kindIs "slice" $value }}
{{- $urls = concat $urls $value }}
{{- else if and (kindIs "string" $value) $value }}
{{- $urls = append $urls $value }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- with ($config.auth | default dict).oidc }}
{{- if kindIs "string" .issuer }}{{ $urls = append $urls .issuer }}{{ end }}
{{- if kindIs "string" .jwksUri }}{{ $urls = append $urls .jwksUri }}{{ end }}
{{- end }}
{{- $defaults := dict "ldap" 389 "ldaps" 636 "http" 80 "https" 443 }}
{{- $ports := list }}
{{- range $url := $urls }}
{{- $parsed := urlParse $url }}
{{- $port := regexFind ":[0-9]+$" $parsed.host | trimPrefix ":" }}
{{- if not $port }}
{{- if not (hasKey $defaults $parsed.scheme) }}
{{- fail (printf "\n\nnetworkPolicy.egress.directories.ports: cannot tell the port of %q (scheme %q); set the ports explicitly." $url $parsed.scheme) }}
{{- end }}
{{- $port = get $defaults $parsed.scheme | toString }}
{{- end }}
{{- $ports = append $ports $port }}
{{- end }}
{{- range $port := $ports | uniq | sortAlpha }}
{{ $port }}
{{- end }}
{{- end }}
