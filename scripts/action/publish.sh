#!/usr/bin/env bash
# The publish step of action.yml: the action's inputs (INPUT_*, as action.yml maps them)
# to one `gadget publish -o json`, whose summary becomes the step's outputs and the
# job summary (report.py). Secrets arrive in the environment and go no further: the
# registry password reaches gadget on stdin, the signing key is written to a file of a
# private temporary directory that is removed on every exit, and the key's passphrase is
# GADGET_PASSWORD, which gadget reads.
#
# Environment: GADGET and GADGET_PYTHON (the install step's outputs), INPUT_*,
# GADGET_REGISTRY_PASSWORD, GADGET_SIGNING_KEY, GADGET_PASSWORD, RUNNER_TEMP,
# GITHUB_OUTPUT, GITHUB_STEP_SUMMARY, GITHUB_ACTION_PATH.
set -euo pipefail

gadget=${GADGET:?GADGET is not set: the install step gives it}
python=${GADGET_PYTHON:?GADGET_PYTHON is not set: the install step gives it}
here=$(dirname "$0")
tmp=${RUNNER_TEMP:-${TMPDIR:-/tmp}}
work=$(mktemp -d "$tmp/gadget-publish.XXXXXX")
trap 'rm -rf "$work"' EXIT
# a cancelled job (SIGINT, then SIGTERM) exits through the EXIT trap too
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
chmod 700 "$work"

fail() {
  echo "::error title=gadget publish::$1"
  [ -z "${GITHUB_OUTPUT:-}" ] || echo "pushed=false" >> "$GITHUB_OUTPUT"
  exit 2
}

# true/false inputs as GitHub writes them (an expression gives "true" or "false")
flag() {
  case "${1,,}" in
    true | yes | on | 1) return 0 ;;
    false | no | off | 0 | "") return 1 ;;
    *) fail "input $2: '$1' is neither true nor false" ;;
  esac
}

[ -n "${INPUT_IMAGE:-}" ] || fail "input image is required (host/repository, e.g. registry.corp:5000/obs/trace_open)"
ref=$INPUT_IMAGE
tag=${INPUT_TAG:-}
if [ -n "$tag" ]; then
  # a ref name is not always a tag: a pull request's is "12/merge", a branch's may have
  # slashes; characters a tag cannot have become "-" (a tag: [A-Za-z0-9_][A-Za-z0-9_.-]*)
  clean=$(printf '%s' "$tag" | sed -e 's/[^A-Za-z0-9_.-]/-/g' -e 's/^[.-]/_/')
  clean=${clean:0:128}
  if [ "$clean" != "$tag" ]; then
    echo "::notice title=gadget publish::tag '$tag' is not a valid image tag: using '$clean'"
  fi
  ref="$INPUT_IMAGE:$clean"
fi
summary_file=${INPUT_SUMMARY_FILE:-$tmp/gadget-publish-summary.json}

store=${GADGETSMITH_STORE:-$tmp/gadget-store}
args=(publish "${INPUT_PATH:-.}" "$ref" -o json
      --store "$store"
      --authfile "${REGISTRY_AUTH_FILE:-${DOCKER_CONFIG:-$HOME/.docker}/config.json}")
[ -z "${INPUT_ARCHES:-}" ] || args+=(--arch "$INPUT_ARCHES")
[ -z "${INPUT_IG_VERSION:-}" ] || args+=(--ig-version "$INPUT_IG_VERSION")
[ -z "${INPUT_POLICY:-}" ] || args+=(--policy "$INPUT_POLICY")
[ -z "${INPUT_CA_FILE:-}" ] || args+=(--ca-file "$INPUT_CA_FILE")
[ -z "${INPUT_INSECURE_REGISTRIES:-}" ] || args+=(--insecure-registries "$INPUT_INSECURE_REGISTRIES")
! flag "${INPUT_STRICT:-false}" strict || args+=(--strict)
! flag "${INPUT_RECURSIVE:-false}" recursive || args+=(--recursive)

junit=""
if flag "${INPUT_TEST:-true}" test; then
  junit=${INPUT_JUNIT_FILE:-gadget-test-report.xml}
  args+=(--junit "$junit")
else
  args+=(--no-test)
fi

pushing=false
if flag "${INPUT_PUSH:-true}" push; then
  pushing=true
else
  args+=(--no-push)
fi

if flag "${INPUT_SIGN:-true}" sign; then
  if [ -n "${GADGET_SIGNING_KEY:-}" ]; then
    key="$work/signing-key"
    (umask 077 && printf '%s\n' "$GADGET_SIGNING_KEY" > "$key")
    args+=(--key "$key")
    [ -n "${GADGET_PASSWORD:-}" ] || echo "::warning title=gadget publish::signing-key-password is empty: only an unencrypted key can be read"
  elif $pushing; then
    fail "signing-key is empty (a secret this workflow cannot read, as in pull requests from forks?): give the key, or sign: false to publish unsigned"
  else
    echo "no signing-key: the image is built and tested, not signed"
  fi
fi
unset GADGET_SIGNING_KEY

password=${GADGET_REGISTRY_PASSWORD:-}
unset GADGET_REGISTRY_PASSWORD
if $pushing && [ -n "${INPUT_REGISTRY_USERNAME:-}" ]; then
  [ -n "$password" ] || fail "registry-username is set but registry-password is empty"
  args+=(--username "$INPUT_REGISTRY_USERNAME" --password-stdin)
fi

# gadget test loads eBPF programs: root (GitHub's runners have password-less sudo). The
# job's PATH goes along (sudo's secure_path would drop a setup-go's Go, or a toolcache's)
run=("$gadget")
if [ "$(id -u)" != 0 ] && [[ " ${args[*]} " != *" --no-test "* ]]; then
  run=(sudo -E env "PATH=$PATH" "$gadget")
fi

# the commit's time as the image's creation time: the same commit builds the same digest
if [ -z "${SOURCE_DATE_EPOCH:-}" ] && epoch=$(git -C "${INPUT_PATH:-.}" log -1 --format=%ct 2>/dev/null); then
  export SOURCE_DATE_EPOCH=$epoch
fi

echo "gadget ${args[*]}"
set +e
printf '%s' "$password" | "${run[@]}" "${args[@]}" > "$summary_file"
rc=$?
set -e
unset password
if [ "${run[0]}" = sudo ]; then
  # what root wrote goes back to the job's user (the runner cleans its directories as that
  # user): the store, and the JUnit report with the directory gadget made for it
  mine=("$store")
  if [ -n "$junit" ] && [ -e "$junit" ]; then
    mine+=("$junit")
    [ "$(dirname "$junit")" = . ] || mine+=("$(dirname "$junit")")
  fi
  sudo chown -R "$(id -u):$(id -g)" -- "${mine[@]}" 2>/dev/null || true
fi
"$python" "$here/report.py" "$summary_file" "$rc" "$junit"
exit "$rc"
