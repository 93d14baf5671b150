#!/usr/bin/env bash
# What the test suite needs beyond Node.js, provisioned so that `npm test` passes on a fresh machine (npm runs this
# as `pretest`). Idempotent and quick when everything is there; the first run on a fresh machine takes minutes.
#
#   - Debian packages: Java 17 and Maven (the Kafka broker), chromium (the console test), docker-compose (the
#     compose file check), python3-venv (the Python agents), openssl (test certificates). Installed with apt-get when run as root; otherwise the
#     script stops and prints the one command to run.
#   - the Kafka broker's jars (test/kafka/broker.sh fetch), the upstream collector (collectors/otelcol/build.sh,
#     needs Go 1.25+), the Python agents' virtual environments (test/agents/python/venv.sh) and the Python agent
#     kit's (its wheel built and installed with pip: test/helpers/python-kit.ts): cached outside the repository, in
#     ~/.cache/tripline.
#
# TRIPLINE_SKIP_PROVISION=1 skips it all (a machine provisioned some other way; the suite still says what is
# missing, test by test).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf 'provision: %s\n' "$*" >&2; }

if [ "${TRIPLINE_SKIP_PROVISION:-}" = "1" ]; then
  log "skipped (TRIPLINE_SKIP_PROVISION=1)"
  exit 0
fi

missing=()
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
    log "the tests need: ${missing[*]}"
    log "install them (Debian: sudo apt-get install -y ${missing[*]}) and run npm test again"
    exit 1
  fi
  log "installing ${missing[*]} (apt-get)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

log "the Kafka broker's jars"
bash test/kafka/broker.sh fetch >&2

log "the upstream OpenTelemetry Collector"
bash collectors/otelcol/build.sh >/dev/null

for requirements in test/agents/python/*/requirements.txt; do
  framework=$(basename "$(dirname "$requirements")")
  log "the Python environment of $framework"
  bash test/agents/python/venv.sh "$framework" >/dev/null
done
log "the Python agent kit's environment (its wheel, installed with pip)"
node_modules/.bin/node --input-type=module -e "await (await import('./test/helpers/python-kit.ts')).kitPython()" >/dev/null
log "ready"
