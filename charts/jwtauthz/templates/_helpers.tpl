{{/* The chart's name, or nameOverride. */}}
{{- define "jwtauthz.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's full name: the objects' name. */}}
{{- define "jwtauthz.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The labels the Deployment, Service, PDB, NetworkPolicy and ServiceMonitor select by. */}}
{{- define "jwtauthz.selectorLabels" -}}
app.kubernetes.io/name: {{ include "jwtauthz.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Every object's labels. */}}
{{- define "jwtauthz.labels" -}}
{{ include "jwtauthz.selectorLabels" . }}
app.kubernetes.io/version: {{ include "jwtauthz.tag" . | quote }}
app.kubernetes.io/part-of: jwtauthz
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end -}}

{{- define "jwtauthz.tag" -}}
{{- default .Chart.AppVersion .Values.image.tag -}}
{{- end -}}

{{/* The image: repository@digest when a digest is given, else repository:tag. */}}
{{- define "jwtauthz.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (include "jwtauthz.tag" .) -}}
{{- end -}}
{{- end -}}

{{- define "jwtauthz.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "jwtauthz.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The Secret whose keys become environment variables, or "". */}}
{{- define "jwtauthz.secretName" -}}
{{- if and .Values.secretEnv .Values.existingSecret -}}
{{- fail "secretEnv and existingSecret: set one, not both" -}}
{{- else if .Values.existingSecret -}}
{{- .Values.existingSecret -}}
{{- else if .Values.secretEnv -}}
{{- printf "%s-env" (include "jwtauthz.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/*
GOMAXPROCS: goMaxProcs if set; none with a CPU limit (Go follows it);
else the CPU request rounded up, at least 2 (what Go does with a limit).
*/}}
{{- define "jwtauthz.gomaxprocs" -}}
{{- $r := .Values.resources -}}
{{- if .Values.goMaxProcs -}}
{{- .Values.goMaxProcs -}}
{{- else if not (dig "limits" "cpu" "" $r) -}}
{{- $cpu := toString (required "resources.requests.cpu is required: GOMAXPROCS is derived from it" (dig "requests" "cpu" "" $r)) -}}
{{- $cores := 0 -}}
{{- if regexMatch "^[0-9]+m$" $cpu -}}
{{- $cores = ceil (divf (trimSuffix "m" $cpu | float64) 1000) | int -}}
{{- else if regexMatch "^[0-9]+(\\.[0-9]+)?$" $cpu -}}
{{- $cores = ceil ($cpu | float64) | int -}}
{{- else -}}
{{- fail (printf "resources.requests.cpu %q: want cores (2, 1.5) or millicores (500m)" $cpu) -}}
{{- end -}}
{{- max 2 $cores -}}
{{- end -}}
{{- end -}}

{{/* The configuration file: a map as YAML, a string verbatim. */}}
{{- define "jwtauthz.config" -}}
{{- if not .Values.config -}}
{{- required "config: set jwtauthz's configuration file, at least your identity provider (charts/jwtauthz/examples/minimal.yaml, docs/deployment/helm.md)" nil -}}
{{- else if kindIs "string" .Values.config -}}
{{- .Values.config -}}
{{- else -}}
{{- toYaml .Values.config -}}
{{- end -}}
{{- end -}}

{{/*
The configuration as a map, to check: a string config is parsed. The
listener addresses are the chart's (ports.*), passed as flags, which would
silently win over the file's.
*/}}
{{- define "jwtauthz.configChecked" -}}
{{- $cfg := dict -}}
{{- if not .Values.config -}}
{{- else if kindIs "string" .Values.config -}}
{{- $cfg = fromYaml .Values.config -}}
{{- if hasKey $cfg "Error" -}}
{{- fail (printf "config: not YAML: %s" (get $cfg "Error")) -}}
{{- end -}}
{{- else -}}
{{- $cfg = .Values.config -}}
{{- end -}}
{{- range $k, $v := dict "grpc_addr" "ports.grpc" "http_addr" "ports.http" "admin_addr" "ports.admin" -}}
{{- if hasKey $cfg $k -}}
{{- fail (printf "config.%s: the chart sets the listener from %s (a flag, which would win over the file)" $k $v) -}}
{{- end -}}
{{- end -}}
{{- if .Values.sharedCache.enabled -}}
{{- range list "shared_cache" "shared_cache_key_file" "shared_cache_timeout" -}}
{{- if hasKey $cfg . -}}
{{- fail (printf "config.%s: sharedCache.enabled sets the shared cache (from sharedCache.existingSecret and sharedCache.timeout)" .) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toJson $cfg -}}
{{- end -}}

{{/*
Fails on an extra argument or variable that would silently override a
value of the chart's: the flags it sets from ports and the config file,
and GOMAXPROCS (goMaxProcs).
*/}}
{{- define "jwtauthz.checkOverrides" -}}
{{- $shared := .Values.sharedCache.enabled -}}
{{- range .Values.extraArgs -}}
{{- if regexMatch "^--?(config|grpc-addr|http-addr|admin-addr)(=|$)" . -}}
{{- fail (printf "extraArgs %q: the chart sets this flag (from ports, or config)" .) -}}
{{- end -}}
{{- if and $shared (regexMatch "^--?shared-cache" .) -}}
{{- fail (printf "extraArgs %q: sharedCache.enabled sets the shared cache" .) -}}
{{- end -}}
{{- end -}}
{{- range .Values.env -}}
{{- if eq .name "GOMAXPROCS" -}}
{{- fail "env GOMAXPROCS: set goMaxProcs instead (the chart derives GOMAXPROCS from resources unless goMaxProcs is set)" -}}
{{- end -}}
{{- if and $shared (hasPrefix "JWTAUTHZ_SHARED_CACHE" .name) -}}
{{- fail (printf "env %s: sharedCache.enabled sets the shared cache" .name) -}}
{{- end -}}
{{- end -}}
{{- if $shared -}}
{{- $_ := required "sharedCache.existingSecret is required with sharedCache.enabled: the Secret with the Redis URL and the cluster key (docs/deployment/shared-cache.md)" .Values.sharedCache.existingSecret -}}
{{- end -}}
{{- end -}}
