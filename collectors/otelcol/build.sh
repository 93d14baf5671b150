#!/usr/bin/env bash
# Builds the upstream OpenTelemetry Collector that collectors/otelcol/config.yaml runs, from the manifest
# collectors/otelcol/builder.yaml, with the OpenTelemetry Collector Builder (ocb) at the manifest's version.
#
#   bash collectors/otelcol/build.sh          # builds when missing, then prints the binary's path (stdout)
#
# The binary lives in a cache OUTSIDE the repository (never commit it):
#   ${TRIPLINE_OTELCOL_CACHE:-$HOME/.cache/tripline/otelcol-<version>}/otelcol-tripline
# ocb itself is installed with `go install` into <cache>/bin. Idempotent: when the binary is there and was
# built from the same manifest (its sha256 is kept beside it), nothing is done. Concurrent runs wait for each
# other (flock). Needs Go (>= 1.25) and the Go module proxy; GOPROXY/GOFLAGS are taken as the machine has them.
# Progress goes to stderr; stdout is only the binary's path.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
manifest="$here/builder.yaml"
name="otelcol-tripline"

log() { printf 'otelcol/build.sh: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ -f "$manifest" ] || die "no manifest at $manifest"
# The distribution's version (dist.version) is the pinned core/contrib version, e.g. 0.149.0.
version="$(awk '/^dist:/{d=1;next} d&&/^[^ #]/{d=0} d&&$1=="version:"{print $2; exit}' "$manifest")"
[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "cannot read dist.version from $manifest (got '$version')"

home="${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}"
cache="${TRIPLINE_OTELCOL_CACHE:-$home/.cache/tripline/otelcol-$version}"
binary="$cache/$name"
stamp="$cache/$name.manifest.sha256"
want="$(sha256sum "$manifest" | cut -d' ' -f1)"

built() { [ -x "$binary" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; }

if built; then
  printf '%s\n' "$binary"
  exit 0
fi

# The toolchain of the machine image lives in /usr/local/go when it is not on PATH.
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then PATH="/usr/local/go/bin:$PATH"; fi
command -v go >/dev/null 2>&1 || die "Go is not installed (https://go.dev/dl/ or apt-get install golang-go >= 1.25); it is needed to build the collector"
go_minor="$(go env GOVERSION | sed -E 's/^go1\.([0-9]+).*/\1/')"
if [[ "$go_minor" =~ ^[0-9]+$ ]] && [ "$go_minor" -lt 21 ]; then
  die "$(go env GOVERSION) is too old to build the collector v$version (needs go1.25; go1.21+ can fetch it itself): install Go >= 1.25 from https://go.dev/dl/"
elif [[ "$go_minor" =~ ^[0-9]+$ ]] && [ "$go_minor" -lt 25 ]; then
  log "note: $(go env GOVERSION) is older than the collector v$version needs (go1.25); the go command fetches that toolchain through the module proxy (GOTOOLCHAIN=auto)"
fi

mkdir -p "$cache"
exec 9>"$cache/.lock"
if command -v flock >/dev/null 2>&1; then flock 9; fi
if built; then # another run built it while this one waited
  printf '%s\n' "$binary"
  exit 0
fi

started=$(date +%s)
export GOBIN="$cache/bin"
if [ ! -x "$GOBIN/builder" ] || [ "$("$GOBIN/builder" version 2>/dev/null | awk '{print $NF}')" != "v$version" ]; then
  log "installing ocb v$version into $GOBIN"
  attempt=1
  until go install "go.opentelemetry.io/collector/cmd/builder@v$version" >&2; do
    [ "$attempt" -ge 3 ] && die "go install go.opentelemetry.io/collector/cmd/builder@v$version failed 3 times"
    attempt=$((attempt + 1))
    log "go install failed; retrying ($attempt/3)"
    sleep 5
  done
fi
unset GOBIN

work="$cache/build"
rm -rf "$work"
mkdir -p "$work/dist"
# ocb takes the output directory from the manifest only: a copy with dist.output_path set.
awk -v out="$work/dist" '{print} /^dist:/{print "  output_path: " out}' "$manifest" >"$work/builder.yaml"

log "building $name v$version (first build: ~3 min on 2 cores with a cold Go cache)"
attempt=1
until "$cache/bin/builder" --config="$work/builder.yaml" >"$work/build.log" 2>&1; do
  if [ "$attempt" -ge 2 ]; then
    tail -n 40 "$work/build.log" >&2
    die "ocb failed twice; full log: $work/build.log"
  fi
  attempt=$((attempt + 1))
  log "ocb failed (log: $work/build.log); retrying once"
  sleep 5
done

[ -x "$work/dist/$name" ] || die "ocb finished but $work/dist/$name is missing; log: $work/build.log"
"$work/dist/$name" --version >/dev/null || die "the built collector does not run; log: $work/build.log"
mv -f "$work/dist/$name" "$binary.tmp"
mv -f "$binary.tmp" "$binary"
printf '%s\n' "$want" >"$stamp"
rm -rf "$work/dist"
log "built $binary in $(($(date +%s) - started)) s"
printf '%s\n' "$binary"
