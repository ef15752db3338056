{{/* Names, labels and the checks every render runs. */}}

{{- define "modelplex.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end }}

{{/* The prefix of every object's name: the release name, plus the chart's unless it already holds it. */}}
{{- define "modelplex.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "modelplex.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end }}

{{/* Standard labels; call with (dict "root" $ "component" "gateway"). */}}
{{- define "modelplex.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{ include "modelplex.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: modelplex
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end }}

{{- define "modelplex.selectorLabels" -}}
app.kubernetes.io/name: {{ include "modelplex.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "modelplex.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end }}

{{/* The most gateway pods that can run at once (the HPA's ceiling when it scales them). */}}
{{- define "modelplex.gatewayReplicasMax" -}}
{{- if .Values.gateway.autoscaling.enabled -}}
{{- max .Values.gateway.replicas .Values.gateway.autoscaling.maxReplicas -}}
{{- else -}}
{{- .Values.gateway.replicas -}}
{{- end -}}
{{- end }}

{{- define "modelplex.usesPostgres" -}}
{{- if .Values.database.existingSecret }}true{{ end -}}
{{- end }}

{{- define "modelplex.hasRedis" -}}
{{- if or .Values.redis.url .Values.redis.existingSecret }}true{{ end -}}
{{- end }}

{{/* Values that the schema cannot judge alone; every template includes this, so lint and install fail. */}}
{{- define "modelplex.validate" -}}
{{- $replicas := include "modelplex.gatewayReplicasMax" . | int -}}
{{- if and (gt $replicas 1) (not (include "modelplex.usesPostgres" .)) -}}
{{- fail (printf "database: SQLite serves one gateway replica only, but gateway.replicas (or gateway.autoscaling.maxReplicas) allows %d: each replica would write its own ledger file, so keys, budgets and usage would split between them. Set database.existingSecret to a Secret holding a PostgreSQL URL, or run one replica." $replicas) -}}
{{- end -}}
{{- if and (gt $replicas 1) (not (include "modelplex.hasRedis" .)) -}}
{{- fail (printf "redis: %d gateway replicas need shared limits: without Redis each replica counts every tenant's rate and concurrency limits on its own, so a tenant gets up to %d times its limit. Set redis.url or redis.existingSecret, or run one replica." $replicas $replicas) -}}
{{- end -}}
{{- if and .Values.gateway.autoscaling.enabled (lt (int .Values.gateway.autoscaling.maxReplicas) (int .Values.gateway.autoscaling.minReplicas)) -}}
{{- fail (printf "gateway.autoscaling: maxReplicas %d is below minReplicas %d" (int .Values.gateway.autoscaling.maxReplicas) (int .Values.gateway.autoscaling.minReplicas)) -}}
{{- end -}}
{{- end }}

{{/* The ledger's environment, shared by the gateway and the migration Job. */}}
{{- define "modelplex.databaseEnv" -}}
{{- if .Values.database.existingSecret }}
- name: MODELPLEX_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.database.existingSecret }}
      key: {{ .Values.database.secretKey }}
{{- else }}
- name: MODELPLEX_DATABASE_URL
  value: sqlite:////var/lib/modelplex/ledger/ledger.db
{{- end }}
- name: MODELPLEX_BILLING_STATE_DIR
  value: /var/lib/modelplex/state
{{- end }}

{{- define "modelplex.generatedSecretName" -}}
{{- printf "%s-generated" (include "modelplex.fullname" .) -}}
{{- end }}

{{/* Where the admin API's bearer token is: the gateway checks it, the operator's capacity reports carry it. */}}
{{- define "modelplex.adminTokenRef" -}}
secretKeyRef:
  name: {{ .Values.admin.existingSecret | default (include "modelplex.generatedSecretName" .) }}
  key: {{ if .Values.admin.existingSecret }}{{ .Values.admin.secretKey }}{{ else }}admin-token{{ end }}
{{- end }}

{{- define "modelplex.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
{{- end }}

{{- define "modelplex.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* nodeSelector, tolerations and affinity of one component's pods. */}}
{{- define "modelplex.scheduling" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{- define "modelplex.monitoringAvailable" -}}
{{- if .Capabilities.APIVersions.Has "monitoring.coreos.com/v1" }}true{{ end -}}
{{- end }}
