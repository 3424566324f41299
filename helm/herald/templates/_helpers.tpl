{{/* Names. */}}
{{- define "herald.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "herald.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "herald.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of one role: (dict "root" $ "role" "edge"). */}}
{{- define "herald.selectorLabels" -}}
app.kubernetes.io/name: {{ include "herald.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .role }}
{{- end }}

{{- define "herald.labels" -}}
helm.sh/chart: {{ include "herald.chart" .root }}
{{ include "herald.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: herald
{{- end }}

{{- define "herald.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "herald.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "herald.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The headless Service of a shard role, and its shard list: one gRPC URL
per StatefulSet pod, in ordinal order (<sts>-N.<svc>.<ns>.svc.<domain>), so
the shard count is the replica count. (dict "root" $ "role" "presence") */}}
{{- define "herald.shardService" -}}
{{- printf "%s-%s" (include "herald.fullname" .root) .role }}
{{- end }}

{{- define "herald.shardHost" -}}
{{- printf "%s.%s.svc.%s" (include "herald.shardService" .) .root.Release.Namespace .root.Values.clusterDomain }}
{{- end }}

{{/* The shard list as HERALD_*_SHARDS takes it: the pods' URLs, or with
shardDiscovery srv the SRV name of the headless Service's grpc port. */}}
{{- define "herald.shardList" -}}
{{- $root := .root }}
{{- if eq $root.Values.shardDiscovery "srv" }}
{{- printf "dns+srv:_grpc._tcp.%s" (include "herald.shardHost" .) }}
{{- else }}
{{- $svc := include "herald.shardService" . }}
{{- $host := include "herald.shardHost" . }}
{{- $replicas := int (index $root.Values .role).replicas }}
{{- $urls := list }}
{{- range $i := until $replicas }}
{{- $urls = append $urls (printf "http://%s-%d.%s:%d" $svc $i $host (int $root.Values.ports.grpc)) }}
{{- end }}
{{- join "," $urls }}
{{- end }}
{{- end }}

{{/* Every edge, through one ClusterIP Service: shards use it to reach a
UDP client through any edge when the client's own edge is gone. */}}
{{- define "herald.edgeGrpcService" -}}
{{- printf "%s-edge-grpc" (include "herald.fullname" .) }}
{{- end }}

{{- define "herald.configName" -}}
{{- printf "%s-config" (include "herald.fullname" .) }}
{{- end }}

{{- define "herald.redisSecretName" -}}
{{- default (printf "%s-redis" (include "herald.fullname" .)) .Values.redis.existingSecret }}
{{- end }}

{{- define "herald.credentialsSecretName" -}}
{{- default (printf "%s-credentials" (include "herald.fullname" .)) .Values.credentials.existingSecret }}
{{- end }}

{{- define "herald.tlsSecretName" -}}
{{- default (printf "%s-tls" (include "herald.fullname" .)) .Values.tls.existingSecret }}
{{- end }}

{{/* The XCAP root URL clients use: xcap.url, else the Ingress's, else the
Service's inside the cluster. */}}
{{- define "herald.xcapUrl" -}}
{{- $x := .Values.xcap }}
{{- if $x.url }}
{{- $x.url }}
{{- else if $x.ingress.enabled }}
{{- printf "%s://%s%s" (ternary "https" "http" (ne $x.ingress.tlsSecretName "")) $x.ingress.host $x.root }}
{{- else }}
{{- printf "http://%s-xcap.%s.svc.%s:%d%s" (include "herald.fullname" .) .Release.Namespace .Values.clusterDomain (int .Values.ports.xcap) $x.root }}
{{- end }}
{{- end }}

{{/* Environment every Herald container gets besides the ConfigMap. */}}
{{- define "herald.env" -}}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: POD_IP
  valueFrom:
    fieldRef:
      fieldPath: status.podIP
- name: HERALD_REDIS
  valueFrom:
    secretKeyRef:
      name: {{ include "herald.redisSecretName" . }}
      key: {{ .Values.redis.existingSecretKey }}
- name: HERALD_NONCE_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ include "herald.credentialsSecretName" . }}
      key: {{ .Values.credentials.existingSecretKey }}
{{- end }}

{{/* HERALD_* variables given as a map, after the chart's own. */}}
{{- define "herald.extraEnv" -}}
{{- range $k, $v := . }}
- name: {{ $k }}
  value: {{ $v | toString | quote }}
{{- end }}
{{- end }}

{{- define "herald.probes" -}}
startupProbe:
  httpGet:
    path: /healthz
    port: health
  periodSeconds: 2
  failureThreshold: 30
livenessProbe:
  httpGet:
    path: /healthz
    port: health
  periodSeconds: 10
  timeoutSeconds: 3
  failureThreshold: 3
readinessProbe:
  httpGet:
    path: /readyz
    port: health
  periodSeconds: 5
  timeoutSeconds: 3
  failureThreshold: 2
{{- end }}

{{- define "herald.podAnnotations" -}}
checksum/config: {{ include (print .root.Template.BasePath "/configmap.yaml") .root | sha256sum }}
{{- if .root.Values.telemetry.prometheusAnnotations }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .root.Values.ports.health | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- with .values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Scheduling and security settings of a pod: (dict "root" $ "values" .Values.edge). */}}
{{- define "herald.podCommon" -}}
serviceAccountName: {{ include "herald.serviceAccountName" .root }}
automountServiceAccountToken: false
securityContext:
  {{- toYaml .root.Values.podSecurityContext | nindent 2 }}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
