# crictl pull, images, inspecti and rmi against the local registry (as registry.k8s.io's mirror).
ref=registry.k8s.io/e2e-test-images/busybox:1.29-2
out="$($CRICTL pull "$ref" 2>&1)" || fail "crictl pull: $out"
expect_contains "$out" "Image is up to date for sha256:" "pull result"
id="${out##*for }"

out="$($CRICTL images -o json)" || fail "crictl images exited $?"
expect_json "$out" ".images | map(select(.id == \"$id\")) | length == 1" "image listed"
expect_json "$out" ".images[0].repoTags == [\"$ref\"]" "repo tag"
expect_json "$out" '.images[0].repoDigests[0] | startswith("registry.k8s.io/e2e-test-images/busybox@sha256:")' \
  "repo digest"

out="$($CRICTL inspecti "$ref")" || fail "crictl inspecti exited $?"
expect_json "$out" ".status.id == \"$id\"" "inspecti by tag"
out="$($CRICTL inspecti "${id#sha256:}")" || fail "crictl inspecti by id exited $?"
expect_json "$out" '.info.imageSpec.config.Cmd | length > 0' "verbose info carries the image config"

$CRICTL rmi "$ref" >/dev/null || fail "crictl rmi"
out="$($CRICTL images -q)" || fail "crictl images -q"
[[ -z "$out" ]] || fail "image still listed after rmi: $out"

if out="$($CRICTL pull registry.k8s.io/e2e-test-images/nothing:1 2>&1)"; then
  fail "pulling a missing image succeeded"
fi
expect_contains "$out" "NotFound" "missing image status code"
