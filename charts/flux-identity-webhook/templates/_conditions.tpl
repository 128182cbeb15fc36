{{/*
The webhooks' CEL matchConditions, derived from .Values.policy: the same expressions, character for character, as
`flux-identity-webhook policy match-conditions` (package policy/conditions, which documents the rules); a test renders
sample policies both ways and compares them. Kept in this order: ServiceAccounts (and those named by the API server,
generateName) in the namespaces of identities and mandates, pods and Deployments in the namespaces of identities,
Flux sources, Flux's other objects and SOPS Secrets in the namespaces of the mandates covering a kind of each, and the
pods of full-injection ServiceAccounts on their own fail-closed webhook, with the policy's precedence (an exact
namespace beats a glob, then an exact ServiceAccount beats a glob).

fiw.conditions renders YAML: {webhooks: {NAME: [{name, expression}]}, skipped: [NAME]}. A webhook without conditions
sees every request its rules select; "skipped" ones had too many patterns for a condition (as the CLI warns).
*/}}
{{- define "fiw.conditions" -}}
{{- $out := dict -}}
{{- $skipped := list -}}
{{- /* Before 1.30 an API server may drop matchConditions: a fail-closed pod webhook would then see every pod. */ -}}
{{- if and .Values.webhooks.scopeToPolicy (semverCompare ">=1.30-0" .Capabilities.KubeVersion.Version) -}}
{{- $p := fromYaml .Values.policy -}}
{{- if hasKey $p "Error" -}}
{{- fail (printf "policy is not valid YAML: %s" (get $p "Error")) -}}
{{- end -}}
{{- $identities := $p.identities | default (list) -}}
{{- $identityNS := list -}}
{{- range $identities -}}{{- $identityNS = concat $identityNS (.namespaces | default (list)) -}}{{- end -}}
{{- /* The kinds of each registration (internal/fluxauth APIs by category); a mandate without kinds covers them all. */ -}}
{{- $sourceKinds := list "GitRepository" "OCIRepository" "HelmRepository" "Bucket" "ImageRepository" -}}
{{- $objectKinds := list "Kustomization" "HelmRelease" "Provider" "Receiver" "ImageUpdateAutomation" "ResourceSetInputProvider" -}}
{{- $secretKinds := list "Secret" -}}
{{- $mandateNS := list -}}
{{- $sourceNS := list -}}{{- $objectNS := list -}}{{- $secretNS := list -}}
{{- range ($p.mandates | default (list)) -}}
{{- $ns := .namespaces | default (list) -}}
{{- $mandateNS = concat $mandateNS $ns -}}
{{- $kinds := .kinds | default (concat $sourceKinds $objectKinds $secretKinds) -}}
{{- $covers := dict -}}
{{- range $kinds -}}
{{- if has (toString .) $sourceKinds -}}{{- $_ := set $covers "source" true -}}{{- end -}}
{{- if has (toString .) $objectKinds -}}{{- $_ := set $covers "object" true -}}{{- end -}}
{{- if has (toString .) $secretKinds -}}{{- $_ := set $covers "secret" true -}}{{- end -}}
{{- end -}}
{{- if hasKey $covers "source" -}}{{- $sourceNS = concat $sourceNS $ns -}}{{- end -}}
{{- if hasKey $covers "object" -}}{{- $objectNS = concat $objectNS $ns -}}{{- end -}}
{{- if hasKey $covers "secret" -}}{{- $secretNS = concat $secretNS $ns -}}{{- end -}}
{{- end -}}
{{- range $w := list (list "serviceaccounts.fluxidentity.dev" (concat $identityNS $mandateNS)) (list "serviceaccounts-generated.fluxidentity.dev" (concat $identityNS $mandateNS)) (list "deployments.fluxidentity.dev" $identityNS) (list "flux-sources.fluxidentity.dev" $sourceNS) (list "flux-objects.fluxidentity.dev" $objectNS) (list "sops-secrets.fluxidentity.dev" $secretNS) (list "pods.fluxidentity.dev" $identityNS) -}}
{{- $expr := include "fiw.nsCondition" (index $w 1) -}}
{{- if $expr -}}
{{- $_ := set $out (index $w 0) (list (dict "name" "policy-namespaces" "expression" $expr)) -}}
{{- else -}}
{{- $skipped = append $skipped (index $w 0) -}}
{{- end -}}
{{- end -}}
{{- if hasKey $out "pods.fluxidentity.dev" -}}
{{- $full := include "fiw.fullInjection" $identities -}}
{{- if eq $full "too-many" -}}
{{- $skipped = append $skipped "pods-full-injection.fluxidentity.dev" -}}
{{- else if $full -}}
{{- $_ := set $out "pods-full-injection.fluxidentity.dev" (list (dict "name" "full-injection" "expression" $full)) -}}
{{- $_ := set $out "pods.fluxidentity.dev" (append (get $out "pods.fluxidentity.dev") (dict "name" "not-full-injection" "expression" (printf "!%s" $full))) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- toYaml (dict "webhooks" $out "skipped" (sortAlpha $skipped)) -}}
{{- end -}}

{{/* A CEL string literal: names and patterns hold no quote; a backslash (an escaped '.' in a regexp) is doubled. */}}
{{- define "fiw.celQuote" -}}
'{{ toString . | replace "\\" "\\\\" }}'
{{- end -}}

{{/* A CEL list of string literals. */}}
{{- define "fiw.celList" -}}
{{- $q := list -}}
{{- range . -}}{{- $q = append $q (include "fiw.celQuote" .) -}}{{- end -}}
[{{ join ", " $q }}]
{{- end -}}

{{/* The anchored RE2 of a glob ('*' any run, '?' one character), as a CEL string literal. */}}
{{- define "fiw.globRE2" -}}
{{- $re := regexQuoteMeta (toString .) | replace "\\*" ".*" | replace "\\?" "." -}}
{{- include "fiw.celQuote" (printf "^%s$" $re) -}}
{{- end -}}

{{/* True for exactly the namespaces the patterns (a list) match; "false" for none; empty when there are too many. */}}
{{- define "fiw.nsCondition" -}}
{{- $names := list -}}
{{- $globs := list -}}
{{- range . -}}
{{- $s := toString . -}}
{{- if regexMatch "[*?]" $s -}}{{- $globs = append $globs $s -}}{{- else -}}{{- $names = append $names $s -}}{{- end -}}
{{- end -}}
{{- $names = $names | uniq | sortAlpha -}}
{{- $globs = $globs | uniq | sortAlpha -}}
{{- if or (gt (len $names) 512) (gt (len $globs) 64) -}}
{{- else if and (not $names) (not $globs) -}}
false
{{- else -}}
{{- $terms := list -}}
{{- if $names -}}{{- $terms = append $terms (printf "request.namespace in %s" (include "fiw.celList" $names)) -}}{{- end -}}
{{- range $globs -}}{{- $terms = append $terms (printf "request.namespace.matches(%s)" (include "fiw.globRE2" .)) -}}{{- end -}}
{{- join " || " $terms -}}
{{- end -}}
{{- end -}}

{{/*
True for exactly the pods whose (namespace, ServiceAccount) resolves to a full-injection entry; empty when no entry
has full injection; "too-many" when the identities name too many pairs. Ranks: 0 exact/exact, 1 exact namespace and
ServiceAccount glob, 2 namespace glob and exact ServiceAccount, 3 glob/glob. Per rank F (a full entry matches) and N
(another entry does): F0 || !N0 && (F1 || !N1 && (F2 || !N2 && F3)).
*/}}
{{- define "fiw.fullInjection" -}}
{{- $pairs := dict "full" (list (dict) (dict) (dict) (dict)) "other" (list (dict) (dict) (dict) (dict)) -}}
{{- $anyFull := false -}}
{{- $seen := dict -}}
{{- $names := 0 -}}
{{- $globs := 0 -}}
{{- range $id := . -}}
{{- $class := "other" -}}
{{- if eq (toString ($id.injection | default "annotate")) "full" -}}{{- $class = "full" -}}{{- $anyFull = true -}}{{- end -}}
{{- range $nsRaw := ($id.namespaces | default (list)) -}}
{{- $ns := toString $nsRaw -}}
{{- range $saRaw := ($id.serviceAccounts | default (list)) -}}
{{- $sa := toString $saRaw -}}
{{- $key := printf "%s/%s" $ns $sa -}}
{{- $nsGlob := regexMatch "[*?]" $ns -}}
{{- $saGlob := regexMatch "[*?]" $sa -}}
{{- $rank := 0 -}}
{{- if and $nsGlob $saGlob -}}{{- $rank = 3 -}}{{- else if $nsGlob -}}{{- $rank = 2 -}}{{- else if $saGlob -}}{{- $rank = 1 -}}{{- end -}}
{{- if not (hasKey $seen $key) -}}
{{- $_ := set $seen $key true -}}
{{- if eq $rank 0 -}}{{- $names = add1 $names -}}{{- else -}}{{- $globs = add1 $globs -}}{{- end -}}
{{- end -}}
{{- $m := index (get $pairs $class) $rank -}}
{{- if eq $rank 0 -}}
{{- $_ := set $m $key (list) -}}
{{- else -}}
{{- $_ := set $m $ns (append (get $m $ns | default (list)) $sa) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- if not $anyFull -}}
{{- else if or (gt $names 512) (gt $globs 64) -}}
too-many
{{- else -}}
{{- $rest := "" -}}
{{- range $r := list 3 2 1 0 -}}
{{- $f := include "fiw.rankGroup" (list $r (index $pairs.full $r)) -}}
{{- $o := include "fiw.rankGroup" (list $r (index $pairs.other $r)) -}}
{{- if $rest -}}
{{- if $o -}}{{- $rest = printf "!%s && (%s)" $o $rest -}}{{- end -}}
{{- if $f -}}{{- $rest = printf "%s || %s" $f $rest -}}{{- end -}}
{{- else -}}
{{- $rest = $f -}}
{{- end -}}
{{- end -}}
[has(object.spec.serviceAccountName) && object.spec.serviceAccountName != '' ? object.spec.serviceAccountName : has(object.spec.serviceAccount) && object.spec.serviceAccount != '' ? object.spec.serviceAccount : 'default'].exists(sa, {{ $rest }})
{{- end -}}
{{- end -}}

{{/* The CEL of one rank's patterns (a list: rank, dict), empty when there are none. */}}
{{- define "fiw.rankGroup" -}}
{{- $r := index . 0 -}}
{{- $m := index . 1 -}}
{{- if $m -}}
{{- $keys := keys $m | sortAlpha -}}
{{- $terms := list -}}
{{- if eq $r 0 -}}
{{- $terms = list (printf "request.namespace + '/' + sa in %s" (include "fiw.celList" $keys)) -}}
{{- else -}}
{{- range $ns := $keys -}}
{{- $sas := get $m $ns | uniq | sortAlpha -}}
{{- if eq $r 1 -}}
{{- $terms = append $terms (printf "(request.namespace == %s && (%s))" (include "fiw.celQuote" $ns) (include "fiw.saMatches" $sas)) -}}
{{- else if eq $r 2 -}}
{{- $terms = append $terms (printf "(request.namespace.matches(%s) && sa in %s)" (include "fiw.globRE2" $ns) (include "fiw.celList" $sas)) -}}
{{- else -}}
{{- $terms = append $terms (printf "(request.namespace.matches(%s) && (%s))" (include "fiw.globRE2" $ns) (include "fiw.saMatches" $sas)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
({{ join " || " $terms }})
{{- end -}}
{{- end -}}

{{/* sa.matches(...) for each ServiceAccount glob of a sorted list, joined with ||. */}}
{{- define "fiw.saMatches" -}}
{{- $terms := list -}}
{{- range . -}}{{- $terms = append $terms (printf "sa.matches(%s)" (include "fiw.globRE2" .)) -}}{{- end -}}
{{- join " || " $terms -}}
{{- end -}}

{{/*
The kinds some mandate of .Values.policy covers (a mandate without kinds covers every kind the webhook knows), as a
YAML list: the background audit is granted only what reading them needs (Secrets above all).
*/}}
{{- define "fiw.coveredKinds" -}}
{{- $all := list "GitRepository" "OCIRepository" "HelmRepository" "Bucket" "ImageRepository" "Kustomization" "HelmRelease" "Provider" "Receiver" "ImageUpdateAutomation" "ResourceSetInputProvider" "Secret" -}}
{{- $p := fromYaml .Values.policy -}}
{{- $covered := list -}}
{{- range ($p.mandates | default (list)) -}}
{{- range (.kinds | default $all) -}}{{- $covered = append $covered (toString .) -}}{{- end -}}
{{- end -}}
{{- toYaml (dict "kinds" ($covered | uniq | sortAlpha)) -}}
{{- end -}}
