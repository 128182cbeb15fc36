{{/* Name of the chart, for labels. */}}
{{- define "fiw.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Fully qualified name: the release name when it already contains the chart name. */}}
{{- define "fiw.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "fiw.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "fiw.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "fiw.selectorLabels" -}}
app.kubernetes.io/name: {{ include "fiw.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "fiw.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Secret holding tls.crt, tls.key (and ca.crt) for the server. */}}
{{- define "fiw.tlsSecret" -}}
{{- printf "%s-tls" (include "fiw.fullname" .) -}}
{{- end -}}

{{/* The serving Certificate cert-manager's CA injector reads. */}}
{{- define "fiw.servingCertificate" -}}
{{- printf "%s-serving" (include "fiw.fullname" .) -}}
{{- end -}}

{{/* namespaceSelector shared by every webhook: never kube-system, never the release namespace. */}}
{{- define "fiw.namespaceSelector" -}}
{{- $excluded := list "kube-system" -}}
{{- range .Values.namespaceSelector.excludedNamespaces -}}
{{- if not (has . $excluded) -}}{{- $excluded = append $excluded . -}}{{- end -}}
{{- end -}}
{{- if not (has .Release.Namespace $excluded) -}}{{- $excluded = append $excluded .Release.Namespace -}}{{- end -}}
{{- with .Values.namespaceSelector.matchLabels }}
matchLabels:
  {{- toYaml . | nindent 2 }}
{{- end }}
matchExpressions:
  - key: kubernetes.io/metadata.name
    operator: NotIn
    values:
      {{- toYaml $excluded | nindent 6 }}
{{- with .Values.namespaceSelector.matchExpressions }}
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* clientConfig for a handler path; caBundle only when the chart generated the CA itself. */}}
{{- define "fiw.clientConfig" -}}
{{- $ctx := index . 0 -}}
{{- $path := index . 1 -}}
{{- $caBundle := index . 2 -}}
clientConfig:
  service:
    name: {{ include "fiw.fullname" $ctx }}
    namespace: {{ $ctx.Release.Namespace }}
    path: {{ $path }}
  {{- with $caBundle }}
  caBundle: {{ . }}
  {{- end }}
{{- end -}}

{{/* The policy file exactly as the pods read it from the ConfigMap: the value with one final newline. */}}
{{- define "fiw.policyContent" -}}
{{- printf "%s\n" (regexReplaceAll "\n*$" .Values.policy "") -}}
{{- end -}}

{{/* Annotations of every webhook configuration: the digest of the policy their matchConditions were derived from
(fluxidentity_policy_info{digest} shows the first 12 characters of the one in force), and cert-manager's CA
injection. */}}
{{- define "fiw.webhookAnnotations" -}}
fluxidentity.dev/policy-sha256: {{ include "fiw.policyContent" . | sha256sum }}
{{- if .Values.tls.certManager.enabled }}
cert-manager.io/inject-ca-from: {{ .Release.Namespace }}/{{ include "fiw.servingCertificate" . }}
{{- end }}
{{- end -}}

{{/* The README section that explains an alert. */}}
{{- define "fiw.runbook" -}}
https://github.com/fluxidentity/flux-identity-webhook/blob/main/charts/flux-identity-webhook/README.md#{{ . }}
{{- end -}}
