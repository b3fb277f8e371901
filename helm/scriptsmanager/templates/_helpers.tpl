{{- define "sm.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "sm.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "sm.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "sm.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "sm.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sm.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: manager
{{- end -}}

{{- define "sm.labels" -}}
{{ include "sm.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "sm.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "sm.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "sm.sessionsNamespace" -}}
{{- default .Release.Namespace .Values.sessions.namespace -}}
{{- end -}}

{{- define "sm.secretName" -}}
{{- default (include "sm.fullname" .) .Values.secret.existingSecret -}}
{{- end -}}

{{/* The claim of a volume: its existing claim, or the chart's. */}}
{{- define "sm.claim" -}}
{{- $v := index .root.Values.persistence .name -}}
{{- default (printf "%s-%s" (include "sm.fullname" .root) .name) $v.existingClaim -}}
{{- end -}}

{{- define "sm.ingressHost" -}}
{{- if .Values.ingress.host -}}
{{- .Values.ingress.host -}}
{{- else -}}
{{- (urlParse .Values.publicUrl).host | splitList ":" | first -}}
{{- end -}}
{{- end -}}

{{- define "sm.scriptGroupsDir" -}}
{{- if .Values.scripts.gitSync.enabled -}}
{{- printf "/srv/scripts/current/%s" (.Values.scripts.gitSync.path | trimPrefix "/") | trimSuffix "/" -}}
{{- else -}}
/srv/scripts
{{- end -}}
{{- end -}}

{{- define "sm.checks" -}}
{{- if gt (int .Values.replicaCount) 1 -}}
{{- if and (not .Values.database.url) (not .Values.secret.existingSecret) -}}
{{- fail "replicaCount > 1 needs external PostgreSQL: set database.url (or secret.existingSecret with DATABASE_URL); SQLite serves one replica only" -}}
{{- end -}}
{{- if and (not .Values.redis.url) (not .Values.secret.existingSecret) -}}
{{- fail "replicaCount > 1 needs Redis as the Socket.IO message queue: set redis.url (or secret.existingSecret with SM_REDIS_URL)" -}}
{{- end -}}
{{- end -}}
{{- if and .Values.scripts.gitSync.enabled (not .Values.scripts.gitSync.repo) -}}
{{- fail "scripts.gitSync.enabled needs scripts.gitSync.repo" -}}
{{- end -}}
{{- end -}}
