{{/* Labels every object carries. */}}
{{- define "takumo.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/part-of: takumo
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector labels of one component: (dict "ctx" $ "name" "aegis-gateway"). */}}
{{- define "takumo.selectorLabels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- end }}

{{/* All labels of one component's objects and pods. */}}
{{- define "takumo.componentLabels" -}}
{{ include "takumo.labels" .ctx }}
{{ include "takumo.selectorLabels" . }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "takumo.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* Pod security of the Takumo reference §12.2: nobody (65534), RuntimeDefault seccomp. */}}
{{- define "takumo.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65534
runAsGroup: 65534
fsGroup: 65534
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "takumo.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65534
runAsGroup: 65534
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end }}

{{/* The address of the rate-limit service's gRPC port, as the gateways' Envoy dials it. */}}
{{- define "takumo.ratelimitHost" -}}
ratelimit.{{ .Release.Namespace }}.svc.{{ .Values.clusterDomain }}
{{- end }}

{{- define "takumo.redisAddress" -}}
{{- if .Values.ratelimit.redisAddress -}}
{{ .Values.ratelimit.redisAddress }}
{{- else -}}
redis.{{ .Release.Namespace }}.svc.{{ .Values.clusterDomain }}:6379
{{- end -}}
{{- end }}

{{/* Combinations the schema cannot express; each stops the render with a clear message. */}}
{{- define "takumo.validate" -}}
{{- $c := .Values.coordinator -}}
{{- if and (not $c.database.enabled) (or (gt (int $c.replicas) 1) $c.autoscaling.enabled) -}}
{{- fail "coordinator: SQLite (coordinator.database.enabled=false) keeps its data in one pod: set coordinator.replicas=1 and coordinator.autoscaling.enabled=false, or use PostgreSQL" -}}
{{- end -}}
{{- if and .Values.ratelimit.enabled (not .Values.ratelimit.redisAddress) (not .Values.redis.enabled) -}}
{{- fail "ratelimit: needs a Redis: set ratelimit.redisAddress (host:port) or redis.enabled=true" -}}
{{- end -}}
{{- $g := .Values.gateway -}}
{{- $taken := dict (toString $g.extproc.port) "gateway.extproc.port" -}}
{{- if $g.envoy.enabled -}}
{{- $_ := set $taken "8443" "Envoy's listener" -}}
{{- $_ := set $taken "9901" "Envoy's admin interface" -}}
{{- end -}}
{{- with get $taken (toString $g.extproc.metricsPort) -}}
{{- fail (printf "gateway.extproc.metricsPort: %d is taken by %s in the gateway pod; pick another port" (int $g.extproc.metricsPort) .) -}}
{{- end -}}
{{- range $name, $a := dict "gateway" .Values.gateway.autoscaling "coordinator" $c.autoscaling -}}
{{- if and $a.enabled (gt (int $a.minReplicas) (int $a.maxReplicas)) -}}
{{- fail (printf "%s.autoscaling: minReplicas (%d) is above maxReplicas (%d)" $name (int $a.minReplicas) (int $a.maxReplicas)) -}}
{{- end -}}
{{- end -}}
{{- range $name, $s := dict "gateway.joinKey" .Values.gateway.joinKey "gateway.tokenSecret" .Values.gateway.tokenSecret "coordinator.database" $c.database "coordinator.adminToken" $c.adminToken -}}
{{- if and $s.create (not $s.value) -}}
{{- fail (printf "%s: create is true but value is empty" $name) -}}
{{- end -}}
{{- end -}}
{{- end }}
