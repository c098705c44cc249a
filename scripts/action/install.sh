#!/usr/bin/env bash
# The install step of action.yml: the Debian/Ubuntu packages `gadget publish` needs, and
# gadgetsmith itself from the action's own checkout (GITHUB_ACTION_PATH, so the action's
# ref is the gadgetsmith that runs) in a venv. Running it again changes nothing: packages
# that are installed are not asked for, and a venv that already has this source is kept.
#
# A gadget with a WASM module in C (build.yaml's wasm: names a .c file) also gets the
# packages that build it (lld-19, wasi-libc, libclang-rt-19-dev-wasm32).
#
# Environment: GITHUB_ACTION_PATH (the source), GADGETSMITH_VENV (default
# $RUNNER_TEMP/gadgetsmith-venv), INPUT_PATH (the gadget's directory, default .),
# GITHUB_OUTPUT (gets gadget=, python=).
set -euo pipefail

src=${GITHUB_ACTION_PATH:?GITHUB_ACTION_PATH is not set: run it as a step of action.yml}
venv=${GADGETSMITH_VENV:-${RUNNER_TEMP:-/tmp}/gadgetsmith-venv}
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"

installed() {
  dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

# apt's candidate for a package, or nothing when the archive has none
candidate() {
  apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ { if ($2 != "(none)") print $2 }'
}

# apt-get install what of "$@" is not installed: each argument is a package or
# alternatives, "clang-19|clang" (the first the archive has is installed, and any one of
# them installed is enough, so a second run asks for nothing)
apt_install() {
  local missing=() pick=() item alt choice
  for item in "$@"; do
    choice=""
    IFS='|' read -ra alts <<<"$item"
    for alt in "${alts[@]}"; do
      if installed "$alt"; then choice=installed; break; fi
    done
    [ -n "$choice" ] || missing+=("$item")
  done
  [ "${#missing[@]}" -gt 0 ] || return 0
  if [ -z "${apt_updated:-}" ]; then
    $sudo apt-get update -qq
    apt_updated=1
  fi
  for item in "${missing[@]}"; do
    IFS='|' read -ra alts <<<"$item"
    choice=""
    for alt in "${alts[@]}"; do
      if [ -n "$(candidate "$alt")" ]; then choice=$alt; break; fi
    done
    if [ -z "$choice" ]; then
      echo "::error::none of ${item//|/, } is in this system's apt sources"
      exit 1
    fi
    [ "$choice" = "${alts[0]}" ] || echo "no ${alts[0]} here: installing $choice"
    pick+=("$choice")
  done
  echo "apt-get install: ${pick[*]}"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${pick[@]}" >/dev/null
}

# clang and llvm 19 (the SDK's), else the distribution's default (gadget takes 15-19);
# bpftool (only --btfgen needs it) from its own package, else Ubuntu's linux-tools
apt_install "clang-19|clang" "llvm-19|llvm" libbpf-dev libbpf1 "bpftool|linux-tools-$(uname -r)" python3-venv

# gadgetsmith from this source: kept when the venv already runs it (a stamp names the
# source and its pyproject.toml), or when it is an editable install of this very tree
stamp="$src|$(sha256sum "$src/pyproject.toml" | cut -d' ' -f1)"
here() {
  [ -x "$venv/bin/gadget" ] || return 1
  [ "$(cat "$venv/.gadgetsmith-source" 2>/dev/null)" = "$stamp" ] && return 0
  local where
  where=$("$venv/bin/python" -c 'import gadgetsmith.toolchain as t; print(t.__file__)' 2>/dev/null) || return 1
  [ "$(realpath "$(dirname "$where")")" = "$(realpath "$src/toolchain")" ]
}
if here; then
  echo "gadgetsmith: $("$venv/bin/gadget" --version) from $src is installed in $venv"
else
  echo "pip install gadgetsmith from $src into $venv"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "$src"
  printf '%s' "$stamp" > "$venv/.gadgetsmith-source.tmp"
  mv "$venv/.gadgetsmith-source.tmp" "$venv/.gadgetsmith-source"
  "$venv/bin/gadget" --version
fi


# what the gadget's WASM module needs (build.yaml read as gadget build reads it; a
# build.yaml that does not load is left for gadget publish to report)
wasm=$("$venv/bin/python" - "${INPUT_PATH:-.}" <<'PY' 2>/dev/null || true
import sys
from gadgetsmith.toolchain.metadata import buildspec
spec = buildspec.load(sys.argv[1])
print(spec.wasm.suffix if spec.wasm else "")
PY
)
case $wasm in
  .c) apt_install "lld-19|lld" wasi-libc libclang-rt-19-dev-wasm32 ;;
  .go) command -v go >/dev/null || echo "::warning::the gadget's WASM module is Go: put Go on PATH (actions/setup-go) before this action" ;;
  .rs) echo "::notice::the gadget's WASM module is Rust: it needs cargo and the wasm32-wasip1 target (rustup target add wasm32-wasip1)" ;;
esac

if [ -n "${GITHUB_OUTPUT:-}" ]; then
  {
    echo "gadget=$venv/bin/gadget"
    echo "python=$venv/bin/python"
  } >> "$GITHUB_OUTPUT"
fi
