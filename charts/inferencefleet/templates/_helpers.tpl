{{- define "inferencefleet.name" -}}{{ .Release.Name }}-inferencefleet{{- end -}}
{{- define "inferencefleet.selectorLabels" -}}
app.kubernetes.io/name: inferencefleet
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
{{- define "inferencefleet.labels" -}}
{{ include "inferencefleet.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}
{{- /* Rules on the namespaced objects the operator serves: our pools, the children it renders and
deletes, events, and the pods it annotates with a deletion cost. One list for the ClusterRole
(every namespace) and for the Roles of watchNamespaces. */ -}}
{{- define "inferencefleet.namespacedRules" -}}
# InferencePools: read and watch; patch kopf's progress annotations and finalizers (never spec).
- apiGroups: [inferencefleet.io]
  resources: [inferencepools]
  verbs: [get, list, watch, patch]
- apiGroups: [inferencefleet.io]
  resources: [inferencepools/status]
  verbs: [get, patch, update]
# Owner references with blockOwnerDeletion on the children need update on the owner's finalizers.
- apiGroups: [inferencefleet.io]
  resources: [inferencepools/finalizers]
  verbs: [update]
# Children, applied server-side with field manager inferencefleet, deleted when no longer rendered.
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [leaderworkerset.x-k8s.io]
  resources: [leaderworkersets]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [""]
  resources: [services, configmaps]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, watch, create, patch, update, delete]
- apiGroups: [monitoring.coreos.com]
  resources: [podmonitors]
  verbs: [get, list, watch, create, patch, update, delete]
# Before a scale-in: list the pool's pods and mark each with its work in flight (pod-deletion-cost).
- apiGroups: [""]
  resources: [pods]
  verbs: [list, patch]
# Events explaining every decision.
- apiGroups: ["", events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end -}}
