#!/usr/bin/env bash
# The install step of action.yml: the Debian/Ubuntu packages `gadget publish` needs, and
# gadgetsmith itself from the action's own checkout (GITHUB_ACTION_PATH, so the action's
# ref is the gadgetsmith that runs) in a venv. Running it again changes nothing: packages
# that are installed are not asked for, and a venv that already has this source is kept.
#
# Environment: GITHUB_ACTION_PATH (the source), GADGETSMITH_VENV (default
# $RUNNER_TEMP/gadgetsmith-venv), GITHUB_OUTPUT (gets gadget=, python=).
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

# clang and llvm 19 (the SDK's), else the distribution's default (gadget takes 15-19);
# bpftool (only `--btfgen` needs it) from its own package, else Ubuntu's linux-tools
want=(clang-19 llvm-19 libbpf-dev libbpf1 bpftool python3-venv)
missing=()
for p in "${want[@]}"; do
  installed "$p" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "apt-get install: ${missing[*]}"
  $sudo apt-get update -qq
  pick=()
  for p in "${missing[@]}"; do
    if [ -n "$(candidate "$p")" ]; then
      pick+=("$p")
    else
      case $p in
        clang-19) pick+=(clang); echo "no clang-19 here: installing the default clang" ;;
        llvm-19) pick+=(llvm) ;;
        bpftool) pick+=(linux-tools-common "linux-tools-$(uname -r)")
                 echo "no bpftool package here: trying linux-tools-$(uname -r)" ;;
        *) echo "::error::package $p is not in this system's apt sources"; exit 1 ;;
      esac
    fi
  done
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${pick[@]}" >/dev/null
fi

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

if [ -n "${GITHUB_OUTPUT:-}" ]; then
  {
    echo "gadget=$venv/bin/gadget"
    echo "python=$venv/bin/python"
  } >> "$GITHUB_OUTPUT"
fi
