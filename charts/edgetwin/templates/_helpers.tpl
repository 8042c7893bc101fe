{{/* The chart's name. */}}
{{- define "edgetwin.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The prefix of every object's name: the release name, with the chart's unless it holds it. */}}
{{- define "edgetwin.fullname" -}}
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

{{- define "edgetwin.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "edgetwin.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "edgetwin.selectorLabels" -}}
app.kubernetes.io/name: {{ include "edgetwin.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: cloudcore
{{- end }}

{{- define "edgetwin.serviceAccountName" -}}
{{ include "edgetwin.fullname" . }}-cloudcore
{{- end }}

{{- define "edgetwin.hubServiceName" -}}
{{ include "edgetwin.fullname" . }}-cloudhub
{{- end }}

{{/* The advertised addresses: the Service's names in the cluster, then the user's. */}}
{{- define "edgetwin.advertiseAddresses" -}}
{{- $svc := include "edgetwin.hubServiceName" . -}}
{{- $addrs := list (printf "%s.%s.svc" $svc .Release.Namespace) (printf "%s.%s.svc.cluster.local" $svc .Release.Namespace) -}}
{{- join "," (concat $addrs .Values.cloudhub.advertiseAddresses | uniq) -}}
{{- end }}

{{/*
The rules of the object of one kind in a file under files/: copies of config/rbac (role.yaml is
what controller-gen writes from the reconcilers' markers), which 'make chart' copies, so the
chart grants exactly what the kustomize install and the bundle do.
Use: include "edgetwin.rules" (dict "root" . "file" "role.yaml" "kind" "ClusterRole")
*/}}
{{- define "edgetwin.rules" -}}
{{- $kind := .kind -}}
{{- range $doc := splitList "\n---" (.root.Files.Get (printf "files/%s" .file)) }}
{{- $obj := fromYaml $doc }}
{{- if and $obj (eq (get $obj "kind") $kind) }}
{{- toYaml (get $obj "rules") }}
{{- end }}
{{- end }}
{{- end }}
