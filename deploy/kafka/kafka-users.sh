#!/bin/bash
# docker-compose.yml's `kafka-users` job (the apache/kafka image, in the broker's network namespace): makes the
# SCRAM-SHA-256 users of the administrator and of each Tripline role, talking to the broker on its loopback-only
# PLAINTEXT listener (localhost:9094, whose principal is the broker's super user ANONYMOUS). Safe to run again
# (a user's credentials are replaced). The ACLs are made next, by the `kafka-acls` job (scripts/kafka-acls.ts).
set -euo pipefail

BIN=${KAFKA_BIN:-/opt/kafka/bin}
BOOTSTRAP=${KAFKA_INTERNAL_BOOTSTRAP:-localhost:9094}

add_user() {
  local name=$1 password=$2
  [[ "$password" =~ ^[A-Za-z0-9._~-]{16,}$ ]] || {
    echo "kafka-users: the password of $name must be 16+ characters of letters, digits and ._~- (e.g. openssl rand -hex 24)" >&2
    exit 1
  }
  "$BIN/kafka-configs.sh" --bootstrap-server "$BOOTSTRAP" --alter --entity-type users --entity-name "$name" \
    --add-config "SCRAM-SHA-256=[iterations=8192,password=$password]" >/dev/null
  echo "kafka-users: $name"
}

add_user "${KAFKA_ADMIN_USER:?}" "${KAFKA_ADMIN_PASSWORD:?}"
add_user "${KAFKA_GATEWAY_USER:?}" "${KAFKA_GATEWAY_PASSWORD:?}"
add_user "${KAFKA_PROCESSOR_USER:?}" "${KAFKA_PROCESSOR_PASSWORD:?}"
add_user "${KAFKA_API_USER:?}" "${KAFKA_API_PASSWORD:?}"
