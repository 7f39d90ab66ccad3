# shellcheck shell=bash
# Shared helpers for toolchain/bootstrap.sh and platform builds. Source it; it defines functions
# only (plus CE_HOME / CE_TOOLS / CE_LOGS defaults).
#
#   build_go_tool NAME VERSION WRAPPER_DIR PKG...
#
# Builds PKG... (import paths, or "." for the wrapper's own main package) from the wrapper module
# WRAPPER_DIR (our own go.mod/go.sum, plus an optional tiny main.go) into
# $CE_HOME/tools/NAME-VERSION/bin/. The build runs in a temporary copy of WRAPPER_DIR, so
# generated files never land in the repository. Optional environment for one call:
#   GO_TOOL_LDFLAGS   -ldflags value (e.g. "-s -w -X pkg.Version=...")
#   GO_TOOL_TAGS      -tags value
#   GO_TOOL_CGO       CGO_ENABLED value (default 0)
#   GO_TOOL_PREBUILD  name of a shell function run as "FN TMPDIR" inside the temp copy before
#                     the build (e.g. code generation); its failure fails the build
# Idempotent: skips the build when $dest/.stamp matches (hash of the wrapper files, the flags and
# the version). Prints timings; on failure prints NAME/VERSION/PKG and the tail of the log and
# returns 1.

: "${CE_HOME:=${HOME}/.cache/ce}"
: "${CE_TOOLS:=${CE_HOME}/tools}"
: "${CE_LOGS:=${CE_HOME}/logs}"

ce_log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
ce_die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

# ce_now: seconds since the epoch (integer).
ce_now() { date +%s; }

_ce_wrapper_hash() { # WRAPPER_DIR EXTRA...
  local dir=$1; shift
  {
    printf '%s\n' "$@"
    (cd "$dir" && find . -type f \( -name 'go.mod' -o -name 'go.sum' -o -name '*.go' \) -print0 \
      | LC_ALL=C sort -z | xargs -0 sha256sum)
  } | sha256sum | cut -c1-16
}

build_go_tool() {
  local name=$1 version=$2 wrapper=$3; shift 3
  [ $# -gt 0 ] || { echo "build_go_tool: no packages given for $name" >&2; return 2; }
  local dest="$CE_TOOLS/$name-$version"
  local ldflags="${GO_TOOL_LDFLAGS:-}" tags="${GO_TOOL_TAGS:-}" cgo="${GO_TOOL_CGO:-0}"
  local stamp
  stamp=$(_ce_wrapper_hash "$wrapper" "$name" "$version" "$ldflags" "$tags" "$cgo" "${GO_TOOL_PREBUILD:-}" "$@")
  if [ -f "$dest/.stamp" ] && [ "$(cat "$dest/.stamp")" = "$stamp" ]; then
    ce_log "$name $version: cached ($dest)"
    return 0
  fi
  command -v go >/dev/null 2>&1 || { echo "ERROR: building $name $version needs 'go' on PATH" >&2; return 1; }
  mkdir -p "$CE_TOOLS" "$CE_LOGS"
  local log="$CE_LOGS/build-$name-$version.log" tmp start rc=0
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/ce-build-$name.XXXXXX")
  cp -R "$wrapper/." "$tmp/"
  start=$(ce_now)
  ce_log "$name $version: building $* (wrapper $(basename "$wrapper"), log $log) ..."
  {
    echo "# build_go_tool $name $version $*  ($(date -u +%FT%TZ)) in $tmp"
    go version
  } >"$log" 2>&1
  if [ -n "${GO_TOOL_PREBUILD:-}" ]; then
    ( cd "$tmp" && "$GO_TOOL_PREBUILD" "$tmp" ) >>"$log" 2>&1 || rc=$?
  fi
  if [ "$rc" -eq 0 ]; then
    mkdir -p "$tmp/.out"
    local args=(build -trimpath -o "$tmp/.out/")
    [ -n "$ldflags" ] && args+=(-ldflags "$ldflags")
    [ -n "$tags" ] && args+=(-tags "$tags")
    ( cd "$tmp" && CGO_ENABLED="$cgo" GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=readonly" go "${args[@]}" "$@" ) >>"$log" 2>&1 || rc=$?
  fi
  local secs=$(( $(ce_now) - start ))
  if [ "$rc" -ne 0 ]; then
    {
      echo "ERROR: build of $name $version failed after ${secs}s (exit $rc)"
      echo "  wrapper module: $wrapper ($(sed -n 's/^module //p' "$wrapper/go.mod"))"
      echo "  packages: $*"
      echo "  log: $log; last lines:"
      tail -n 25 "$log" | sed 's/^/    /'
    } >&2
    rm -rf "$tmp"
    return 1
  fi
  rm -rf "$dest.new"
  mkdir -p "$dest.new/bin"
  mv "$tmp/.out/"* "$dest.new/bin/"
  echo "$secs" >"$dest.new/.build-seconds"
  echo "$stamp" >"$dest.new/.stamp"
  rm -rf "$dest" && mv "$dest.new" "$dest"
  rm -rf "$tmp"
  ce_log "$name $version: built in ${secs}s -> $dest/bin ($(ls "$dest/bin" | tr '\n' ' '))"
}
