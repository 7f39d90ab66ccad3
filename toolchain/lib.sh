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
#   GO_TOOL_FETCH_PKGS  extra packages whose modules the prebuild step reads or runs (fetched too)
#   GO_TOOL_SRC_MODULES modules whose source directory the prebuild step reads (must resolve)
# Idempotent: skips the build when $dest/.stamp matches (hash of the wrapper files, the flags and
# the version). Prints timings; on failure prints NAME/VERSION/PKG and the tail of the log and
# returns 1.
#
# Two phases (CE_PHASE):
#   fetch  download every module the build reads (go list -deps of the packages, with the same
#          tags and CGO setting) and check every source directory a generate step reads resolves;
#          compiles nothing; stops at the first module it cannot get, with the proxy's answer
#   build  (default) compile with GOPROXY=off and -mod=readonly: only what was fetched is used, so
#          a missing download fails here, naming the module, instead of hiding behind a warm cache

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

# go_fetch NAME VERSION WRAPPER PKG...: the fetch phase of build_go_tool (see above).
go_fetch() {
  local name=$1 version=$2 wrapper=$3; shift 3
  local -a pkgs=() imports=()
  local p log="$CE_LOGS/fetch-$name-$version.log" start rc=0 m dir
  mkdir -p "$CE_LOGS"
  start=$(ce_now)
  for p in "$@"; do
    if [ "$p" = . ]; then
      # the wrapper's own main package may embed generated files: list what it imports instead
      read -r -a imports < <(cd "$wrapper" && GOFLAGS=-mod=readonly go list -e -f '{{join .Imports " "}}' . 2>>"$log")
      pkgs+=("${imports[@]}")
    else
      pkgs+=("$p")
    fi
  done
  # shellcheck disable=SC2206
  pkgs+=(${GO_TOOL_FETCH_PKGS:-})
  local -a flags=(-deps -test=false)
  [ -n "${GO_TOOL_TAGS:-}" ] && flags+=(-tags "$GO_TOOL_TAGS")
  ( cd "$wrapper" && CGO_ENABLED="${GO_TOOL_CGO:-0}" GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=readonly" \
      go list "${flags[@]}" "${pkgs[@]}" ) >/dev/null 2>>"$log" || rc=$?
  if [ "$rc" -ne 0 ]; then
    {
      echo "ERROR: fetching the modules of $name $version failed (wrapper $wrapper; log $log):"
      grep -v '^go: downloading' "$log" | grep -m 8 . | sed 's/^/    /'
    } >&2
    return 1
  fi
  for m in ${GO_TOOL_SRC_MODULES:-}; do
    dir=$(cd "$wrapper" && GOFLAGS=-mod=readonly go mod download -json "$m" 2>>"$log" \
          | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')
    if [ -z "$dir" ] || [ ! -d "$dir" ]; then
      echo "ERROR: $name $version: the source of $m (read by its generate step) did not resolve (log $log)" >&2
      return 1
    fi
  done
  ce_log "$name $version: modules fetched in $(( $(ce_now) - start ))s"
}

# go_src_dir WRAPPER MODULE: the extracted source of MODULE from the fetched cache (build phase).
go_src_dir() {
  local dir
  dir=$(cd "$1" && GOPROXY=off GOFLAGS=-mod=readonly go list -m -f '{{.Dir}}' "$2" 2>/dev/null) || true
  if [ -z "$dir" ] || [ ! -d "$dir" ]; then
    echo "ERROR: module $2 is not in the fetched module cache ($(go env GOMODCACHE)); run ./ce bootstrap --fetch-only" >&2
    return 1
  fi
  echo "$dir"
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
  if [ "${CE_PHASE:-build}" = fetch ]; then
    go_fetch "$name" "$version" "$wrapper" "$@"
    return
  fi
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
  # Offline from here on: only the fetched module cache is read.
  if [ -n "${GO_TOOL_PREBUILD:-}" ]; then
    ( cd "$tmp" && export GOPROXY=off GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=readonly" && "$GO_TOOL_PREBUILD" "$tmp" ) >>"$log" 2>&1 || rc=$?
  fi
  if [ "$rc" -eq 0 ]; then
    mkdir -p "$tmp/.out"
    local args=(build -trimpath -o "$tmp/.out/")
    [ -n "$ldflags" ] && args+=(-ldflags "$ldflags")
    [ -n "$tags" ] && args+=(-tags "$tags")
    ( cd "$tmp" && CGO_ENABLED="$cgo" GOPROXY=off GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=readonly" go "${args[@]}" "$@" ) >>"$log" 2>&1 || rc=$?
  fi
  local secs=$(( $(ce_now) - start ))
  if [ "$rc" -ne 0 ]; then
    local missing=""
    # offline, go names a module it lacks either as "MOD@VER: module lookup disabled" or as the
    # "go: downloading MOD VER" it attempted just before "module lookup disabled by GOPROXY=off"
    if grep -q 'GOPROXY=off' "$log"; then
      missing=$( { grep -oE '[^ :]+@v[^ :]+: module lookup disabled by GOPROXY=off' "$log" | sed 's/: module lookup.*//'
                   sed -n 's/^go: downloading \([^ ]*\) \(v[^ ]*\)$/\1@\2/p' "$log"; } | sort -u | head -n 5 | tr '\n' ' ')
    fi
    {
      echo "ERROR: build of $name $version failed after ${secs}s (exit $rc)"
      [ -n "$missing" ] && echo "  missing from the fetched module cache: $missing(run ./ce bootstrap --fetch-only)"
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

# apt_packages PKG...: Debian packages, in the current phase (CE_PHASE). The fetch phase downloads
# the missing ones (and their dependencies) into $CE_HOME/debs; the build phase installs from
# there. Installed packages are left alone.
apt_packages() {
  local -a missing=()
  local pkg
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -gt 0 ] || return 0
  local debs="$CE_HOME/debs" log="$CE_LOGS/apt-${CE_PHASE:-build}.log"
  mkdir -p "$debs/partial" "$CE_LOGS"
  local -a apt=(apt-get -y -q --no-install-recommends -o "Dir::Cache::archives=$debs" install)
  if [ "${CE_PHASE:-build}" = fetch ]; then
    ce_log "apt-get install --download-only ${missing[*]} -> $debs"
    # a fresh machine has empty package lists: update once, then retry
    { "${apt[@]}" --download-only "${missing[@]}" || { apt-get update -q && "${apt[@]}" --download-only "${missing[@]}"; }; } \
      >"$log" 2>&1 || { grep -m 5 -E '^E:' "$log" >&2 || tail -n 5 "$log" >&2; echo "ERROR: downloading Debian packages ${missing[*]} failed (log $log)" >&2; return 1; }
  else
    ce_log "apt-get install ${missing[*]} (from $debs)"
    "${apt[@]}" "${missing[@]}" >"$log" 2>&1 \
      || { tail -n 20 "$log" >&2; echo "ERROR: apt-get install ${missing[*]} failed (log $log)" >&2; return 1; }
  fi
}
