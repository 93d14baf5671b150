-- Who may use Tripline: API and ingest tokens (only their SHA-256 is stored) and the audit trail of every
-- write made through the API. Same read rule as the other tables (FINAL; see README.md).

-- One row per token; revoking writes a newer version of the row (ReplacingMergeTree keeps the last).
CREATE TABLE IF NOT EXISTS {database:Identifier}.access_tokens
(
    id          String COMMENT 'Public token id (tok_…); never the token',
    tenant      LowCardinality(String),
    role        LowCardinality(String) COMMENT 'agent, viewer, operator or admin',
    name        String COMMENT 'Who or what holds it; the actor in the audit trail',
    token_hash  String COMMENT 'Hex SHA-256 of the token',
    superuser   Bool COMMENT 'May manage the tokens of every tenant (the bootstrap admin token only)',
    created_at  DateTime64(3, 'UTC'),
    created_by  String,
    revoked_at  Nullable(DateTime64(3, 'UTC')),
    revoked_by  String,
    version     UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY id;

-- Every API request that changes something (kill, restore, false positive, tokens, secrets, task starts,
-- acknowledgements), allowed or refused, with the actor its token names and the reason it gave.
CREATE TABLE IF NOT EXISTS {database:Identifier}.audit_log
(
    time        DateTime64(3, 'UTC'),
    tenant      LowCardinality(String),
    actor       String COMMENT 'The token name (empty when no valid token was sent)',
    token_id    String,
    role        LowCardinality(String),
    method      LowCardinality(String),
    route       LowCardinality(String) COMMENT 'The route pattern, e.g. /v1/tasks/:taskId/revoke',
    target      String COMMENT 'The route parameters as JSON',
    reason      String,
    status      UInt16 COMMENT 'HTTP status of the answer',
    request_id  String,
    INDEX time_minmax time TYPE minmax GRANULARITY 1
)
ENGINE = MergeTree
ORDER BY (tenant, time);
