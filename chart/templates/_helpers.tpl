{{/*
Names. Every object is "<fullname>-<part>", and fullname is the release name (or fullnameOverride), so with
release "streamspace" the names are the ones the troubleshooting guide uses: streamspace-api, streamspace-ui,
streamspace-k8s-agent, streamspace-postgres, streamspace-secrets, streamspace-admin-credentials.
*/}}
{{- define "streamspace.name" -}}
{{- .Values.nameOverride | default .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "streamspace.fullname" -}}
{{- .Values.fullnameOverride | default .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{- define "streamspace.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Labels. Call with (dict "ctx" $ "component" "api").
Components: api, web, k8s-agent, postgres. The selector labels are a subset that never changes across upgrades.
*/}}
{{- define "streamspace.selectorLabels" -}}
app.kubernetes.io/name: {{ include "streamspace.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "streamspace.labels" -}}
{{ include "streamspace.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: streamspace
helm.sh/chart: {{ include "streamspace.chart" .ctx }}
{{- end -}}

{{/*
Extra pod labels. The guide selects API pods both by component "api" (its NetworkPolicy example) and by
"control-plane" (its kubectl logs commands); one key cannot hold both, so component is "api" and the role
label names the tier. PostgreSQL pods also carry app=postgres, as the guide's kubectl commands expect.
*/}}
{{- define "streamspace.api.extraLabels" -}}
streamspace.io/role: control-plane
{{- end -}}

{{- define "streamspace.postgres.extraLabels" -}}
app: postgres
{{- end -}}

{{/* An image reference: (dict "ctx" $ "image" .Values.api.image). The tag defaults to the chart's appVersion. */}}
{{- define "streamspace.image" -}}
{{- printf "%s:%s" .image.repository (.image.tag | default .ctx.Chart.AppVersion | toString) -}}
{{- end -}}

{{/* Optional sections. A values file may drop a section entirely (k8sAgent: null), so test the section first. */}}
{{- define "streamspace.k8sAgent.enabled" -}}
{{- if and .Values.k8sAgent .Values.k8sAgent.enabled -}}true{{- end -}}
{{- end -}}

{{- define "streamspace.postgresql.internal" -}}
{{- if .Values.postgresql.enabled -}}true{{- end -}}
{{- end -}}

{{- define "streamspace.networkPolicy.enabled" -}}
{{- if and .Values.networkPolicy .Values.networkPolicy.enabled -}}true{{- end -}}
{{- end -}}

{{- define "streamspace.ingress.enabled" -}}
{{- if and .Values.ingress .Values.ingress.enabled -}}true{{- end -}}
{{- end -}}

{{- define "streamspace.rbac.create" -}}
{{- if and (include "streamspace.k8sAgent.enabled" .) .Values.rbac .Values.rbac.create -}}true{{- end -}}
{{- end -}}

{{/* Secrets: names and keys. Pods read every secret through secretKeyRef, never as a plain value. */}}
{{- define "streamspace.secretsName" -}}
{{- if and .Values.secrets .Values.secrets.existingSecret -}}
{{- .Values.secrets.existingSecret -}}
{{- else -}}
{{- printf "%s-secrets" (include "streamspace.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "streamspace.adminSecretName" -}}
{{- if and .Values.admin .Values.admin.existingSecret -}}
{{- .Values.admin.existingSecret -}}
{{- else -}}
{{- printf "%s-admin-credentials" (include "streamspace.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* Where the database password lives: the chart's secret for the internal PostgreSQL, the operator's for an external one. */}}
{{- define "streamspace.postgresql.secretName" -}}
{{- if include "streamspace.postgresql.internal" . -}}
{{- include "streamspace.secretsName" . -}}
{{- else -}}
{{- required "postgresql.external.existingSecret is required with an external PostgreSQL (a Secret with key postgres-password)" .Values.postgresql.external.existingSecret -}}
{{- end -}}
{{- end -}}

{{/*
A generated secret value, base64-encoded: the value already in the cluster when there is one (so upgrades keep
passwords and tokens), else a new random one. Call with (dict "ctx" $ "secret" NAME "key" KEY "length" N).
*/}}
{{- define "streamspace.generatedSecretValue" -}}
{{- $existing := lookup "v1" "Secret" .ctx.Release.Namespace .secret -}}
{{- if and $existing $existing.data (hasKey $existing.data .key) -}}
{{- index $existing.data .key -}}
{{- else -}}
{{- randAlphaNum (int .length) | b64enc -}}
{{- end -}}
{{- end -}}

{{/* PostgreSQL connection parts. */}}
{{- define "streamspace.postgresql.host" -}}
{{- if include "streamspace.postgresql.internal" . -}}
{{- printf "%s-postgres" (include "streamspace.fullname" .) -}}
{{- else -}}
{{- required "postgresql.external.host is required with an external PostgreSQL" .Values.postgresql.external.host -}}
{{- end -}}
{{- end -}}

{{- define "streamspace.postgresql.port" -}}
{{- if include "streamspace.postgresql.internal" . -}}5432{{- else -}}{{ .Values.postgresql.external.port | default 5432 | int }}{{- end -}}
{{- end -}}

{{- define "streamspace.postgresql.database" -}}
{{- if include "streamspace.postgresql.internal" . -}}
{{- .Values.postgresql.database | default "streamspace" -}}
{{- else -}}
{{- .Values.postgresql.external.database | default "streamspace" -}}
{{- end -}}
{{- end -}}

{{- define "streamspace.postgresql.username" -}}
{{- if include "streamspace.postgresql.internal" . -}}
{{- .Values.postgresql.username | default "streamspace" -}}
{{- else -}}
{{- .Values.postgresql.external.username | default "streamspace" -}}
{{- end -}}
{{- end -}}

{{/*
The API's connection string. The password is not in it: Kubernetes expands $(POSTGRES_PASSWORD) from the env var of
that name, which comes from a secretKeyRef and must be declared before this one.
*/}}
{{- define "streamspace.postgresql.connectionString" -}}
{{- $parts := list
  (printf "Host=%s" (include "streamspace.postgresql.host" .))
  (printf "Port=%s" (include "streamspace.postgresql.port" .))
  (printf "Database=%s" (include "streamspace.postgresql.database" .))
  (printf "Username=%s" (include "streamspace.postgresql.username" .))
  "Password=$(POSTGRES_PASSWORD)" -}}
{{- if and (not (include "streamspace.postgresql.internal" .)) .Values.postgresql.external.connectionOptions -}}
{{- $parts = append $parts (.Values.postgresql.external.connectionOptions | trimSuffix ";") -}}
{{- end -}}
{{- join ";" $parts -}}
{{- end -}}

{{/* The agent's hub URL: the configured one, else the in-cluster API Service. */}}
{{- define "streamspace.k8sAgent.controlPlaneUrl" -}}
{{- .Values.k8sAgent.config.controlPlaneUrl | default (printf "ws://%s-api:8000/agent/ws" (include "streamspace.fullname" .)) -}}
{{- end -}}

{{/* PUBLIC_URL: the configured one, else the ingress host (https with TLS), else empty (not advertised). */}}
{{- define "streamspace.publicUrl" -}}
{{- if .Values.api.config.publicUrl -}}
{{- .Values.api.config.publicUrl -}}
{{- else if and (include "streamspace.ingress.enabled" .) .Values.ingress.host -}}
{{- printf "%s://%s" (ternary "https" "http" (and .Values.ingress.tls .Values.ingress.tls.enabled | default false)) .Values.ingress.host -}}
{{- end -}}
{{- end -}}

{{/*
Where sessions run: the configured namespace, else "<fullname>-sessions". Never the release namespace: the agent's
Role lives in the session namespace and grants get and create on Secrets there, so in the release namespace it could
read the control plane's own Secrets (the JWT signing key, the admin password, the database password).
*/}}
{{- define "streamspace.k8sAgent.sessionNamespace" -}}
{{- $namespace := .Values.k8sAgent.config.sessionNamespace | default (printf "%s-sessions" (include "streamspace.fullname" .)) -}}
{{- if eq $namespace .Release.Namespace -}}
{{- fail (printf "k8sAgent.config.sessionNamespace must not be the release namespace %q: the agent's Role in the session namespace may read Secrets, and the release namespace holds the control plane's (%s, %s). Leave it empty for %q or name another namespace." .Release.Namespace (include "streamspace.secretsName" .) (include "streamspace.adminSecretName" .) (printf "%s-sessions" (include "streamspace.fullname" .))) -}}
{{- end -}}
{{- $namespace -}}
{{- end -}}

{{/* The chart creates the session namespace unless told it exists already (k8sAgent.createSessionNamespace: false). */}}
{{- define "streamspace.k8sAgent.createSessionNamespace" -}}
{{- if and (include "streamspace.k8sAgent.enabled" .) (ne (toString .Values.k8sAgent.createSessionNamespace) "false") -}}true{{- end -}}
{{- end -}}

{{- define "streamspace.k8sAgent.serviceAccountName" -}}
{{- if and .Values.serviceAccount .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (printf "%s-k8s-agent" (include "streamspace.fullname" .)) -}}
{{- else -}}
{{- (and .Values.serviceAccount .Values.serviceAccount.name) | default "default" -}}
{{- end -}}
{{- end -}}

{{/*
The agent's Role: exactly the Kubernetes calls the kubernetes platform makes, in the session namespace, and
nothing more. The Kubernetes platform's tests compare both the calls they record and the permissions the agent's
kubernetes.rbac check asks about (KubernetesChecks.Required) against it.
pods/portforward: the VNC tunnel of an agent outside the cluster opens it as a WebSocket, an HTTP GET that RBAC
authorizes as "get"; API servers since 1.35 (AuthorizePodWebsocketUpgradeCreatePermission) also require "create",
the verb of the older SPDY POST. Both are granted, so the tunnel works on either.
*/}}
{{- define "streamspace.k8sAgent.rules" -}}
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "create", "delete"]
- apiGroups: ["apps"]
  resources: ["deployments/scale"]
  verbs: ["patch"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch"]
- apiGroups: [""]
  resources: ["pods/portforward"]
  verbs: ["get", "create"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "create"]
- apiGroups: [""]
  resources: ["persistentvolumeclaims"]
  verbs: ["create", "list", "watch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["list", "watch"]
{{- end -}}

{{/*
The agent's one cluster-wide grant: storage classes are cluster-scoped, and its kubernetes.storage_class check reads
the configured one by name (get, limited to that name), or, with none configured, lists them to find the default.
SelfSubjectAccessReview (the kubernetes.rbac check) needs no grant: Kubernetes' system:basic-user allows it to every
authenticated account.
*/}}
{{- define "streamspace.k8sAgent.clusterRules" -}}
- apiGroups: ["storage.k8s.io"]
  resources: ["storageclasses"]
{{- with .Values.k8sAgent.config.storageClass }}
  resourceNames: [{{ . | quote }}]
  verbs: ["get"]
{{- else }}
  verbs: ["list"]
{{- end }}
{{- end -}}

{{/* Pod and container hardening shared by the api, web and agent (the .NET images' non-root "app" user, uid 1654). */}}
{{- define "streamspace.dotnet.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 1654
runAsGroup: 1654
fsGroup: 1654
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "streamspace.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end -}}

{{/* Scheduling and pull secrets for a component: (dict "ctx" $ "section" .Values.api). */}}
{{- define "streamspace.podScheduling" -}}
{{- with .ctx.Values.imagePullSecrets }}
imagePullSecrets:
  {{- range . }}
  - name: {{ . }}
  {{- end }}
{{- end }}
{{- with .section.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .section.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .section.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
A Deployment's rollout for a component of several replicas: a new pod is ready before an old one goes, so a rolling
update never lowers the ready count. (dict "ctx" $ "component" "api")
*/}}
{{- define "streamspace.rollingUpdate" -}}
strategy:
  type: RollingUpdate
  rollingUpdate:
    maxUnavailable: 0
    maxSurge: 1
{{- end -}}

{{/*
Spreads a component's pods over nodes and zones. ScheduleAnyway: a preference, so a single-node cluster still schedules
every replica. (dict "ctx" $ "component" "api")
*/}}
{{- define "streamspace.topologySpread" -}}
topologySpreadConstraints:
  {{- range list "kubernetes.io/hostname" "topology.kubernetes.io/zone" }}
  - maxSkew: 1
    topologyKey: {{ . }}
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "streamspace.selectorLabels" (dict "ctx" $.ctx "component" $.component) | nindent 8 }}
  {{- end }}
{{- end -}}

{{/*
The sign-in settings the API and the UI both read (README.md, Identity): they must agree.
*/}}
{{- define "streamspace.identity.sharedEnv" -}}
{{- $oidc := .Values.identity.oidc -}}
- name: OIDC_ISSUER
  value: {{ $oidc.issuer | quote }}
- name: OIDC_CLIENT_ID
  value: {{ $oidc.clientId | quote }}
- name: LOCAL_LOGIN
  value: {{ .Values.identity.localLogin | toString | quote }}
{{- end }}
