{{- define "inferencefleet.name" -}}{{ .Release.Name }}-inferencefleet{{- end -}}
{{- define "inferencefleet.labels" -}}
app.kubernetes.io/name: inferencefleet
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}
