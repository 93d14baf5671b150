#!/bin/bash
# ClickHouse first-start script (docker-compose.yml mounts it into /docker-entrypoint-initdb.d/, which the
# clickhouse-server image runs once, on an empty data directory, after it created CLICKHOUSE_DB): the user Grafana
# reads with. It may SELECT the tables Tripline's dashboards show (dashboards/json) and nothing else: no insert,
# no other table (access_tokens, secrets, audit), no DDL, no access management.
#
# Reads CLICKHOUSE_USER / CLICKHOUSE_PASSWORD (the administrator the image made), CLICKHOUSE_DB, and
# GRAFANA_CLICKHOUSE_USER / GRAFANA_CLICKHOUSE_PASSWORD (the reader). The password is sent as its SHA-256 only.
set -euo pipefail

: "${CLICKHOUSE_USER:?}" "${CLICKHOUSE_PASSWORD:?}" "${CLICKHOUSE_DB:?}"
: "${GRAFANA_CLICKHOUSE_USER:?set GRAFANA_CLICKHOUSE_USER}" "${GRAFANA_CLICKHOUSE_PASSWORD:?set GRAFANA_CLICKHOUSE_PASSWORD}"

# The tables of dashboards/json (test/integration/compose.test.ts checks the two agree).
DASHBOARD_TABLES="alerts baselines events revocations tasks verifications"

identifier='^[A-Za-z_][A-Za-z0-9_]*$'
[[ "$GRAFANA_CLICKHOUSE_USER" =~ $identifier ]] || { echo "GRAFANA_CLICKHOUSE_USER must be an identifier" >&2; exit 1; }
[[ "$CLICKHOUSE_DB" =~ $identifier ]] || { echo "CLICKHOUSE_DB must be an identifier" >&2; exit 1; }
hash=$(printf '%s' "$GRAFANA_CLICKHOUSE_PASSWORD" | sha256sum | cut -d' ' -f1)

sql="CREATE USER IF NOT EXISTS ${GRAFANA_CLICKHOUSE_USER} IDENTIFIED WITH sha256_hash BY '${hash}' SETTINGS readonly = 2;"
for table in $DASHBOARD_TABLES; do
  sql+=" GRANT SELECT ON ${CLICKHOUSE_DB}.${table} TO ${GRAFANA_CLICKHOUSE_USER};"
done

clickhouse client --host 127.0.0.1 --user "$CLICKHOUSE_USER" --password "$CLICKHOUSE_PASSWORD" --multiquery --query "$sql"
