{{/* An image reference from {repository, tag, digest}: the digest wins when set. */}}
{{- define "mekha.image" -}}
{{- if .digest -}}{{ .repository }}@{{ .digest }}{{- else -}}{{ .repository }}:{{ .tag }}{{- end -}}
{{- end -}}

{{/* Each object of one bundle file (a path under bundle/), as YAML documents, with the chart's values applied. */}}
{{- define "mekha.bundleFile" -}}
{{- $root := .root -}}
{{- range $doc := regexSplit "(?m)^---[ \t]*$" ($root.Files.Get (printf "bundle/%s" .file)) -1 }}
{{- $o := fromYaml $doc }}
{{- if $o.kind }}
{{- if and (eq $o.kind "DaemonSet") (eq $o.metadata.name "mekha-agent") }}
{{- $spec := $o.spec.template.spec }}
{{- $c := index $spec.containers 0 }}
{{- $_ := set $c "image" (include "mekha.image" $root.Values.images.agent) }}
{{- $_ := set $spec "nodeSelector" $root.Values.agent.nodeSelector }}
{{- if $root.Values.agent.tolerations }}{{ $_ := set $spec "tolerations" $root.Values.agent.tolerations }}{{ end }}
{{- $_ := set $c.resources.limits "memory" $root.Values.agent.level0Memory }}
{{- if $root.Values.agent.lendMemory }}{{ $_ := set $c "args" (append $c.args (printf "--lend-memory=%s" $root.Values.agent.lendMemory)) }}{{ end }}
{{- range $spec.volumes }}{{ if eq .name "level0" }}{{ $_ := set .emptyDir "sizeLimit" $root.Values.agent.level0Memory }}{{ end }}{{ end }}
{{- end }}
{{- if and (eq $o.kind "Deployment") (eq $o.metadata.name "mekha-operator") }}
{{- $_ := set (index $o.spec.template.spec.containers 0) "image" (include "mekha.image" $root.Values.images.operator) }}
{{- end }}
---
{{ toYaml $o }}
{{- end }}
{{- end }}
{{- end -}}
