-- The kill switch's credentials: task tokens issued after a policy decision, tokens revoked on their own
-- (RFC 7009), and every policy decision with the policies that decided it. Same read rule as the other
-- tables (FINAL; see README.md). Kept without a TTL where they are audit trail.

-- One row per issued task token (the token itself is never stored, only its claims and jti).
CREATE TABLE IF NOT EXISTS {database:Identifier}.credentials
(
    tenant      LowCardinality(String),
    jti         String COMMENT 'The token id (JWT jti)',
    task_id     String,
    task_type   LowCardinality(String),
    agent_id    String,
    scopes      Array(String),
    tools       Array(String),
    resources   Array(String),
    issued_at   DateTime64(6, 'UTC'),
    expires_at  DateTime64(6, 'UTC'),
    decision_id String COMMENT 'The policy decision that allowed it (policy_decisions.id)',
    kid         String COMMENT 'The signing key id (RFC 7638 thumbprint)',
    ingested_at DateTime64(6, 'UTC') DEFAULT now64(6),
    INDEX task_bloom task_id TYPE bloom_filter GRANULARITY 4
)
ENGINE = ReplacingMergeTree(ingested_at)
ORDER BY (tenant, jti);

-- Tokens revoked one by one (POST /oauth2/revoke). Revoking a task kills all its tokens without a row here:
-- the revocations table says so.
CREATE TABLE IF NOT EXISTS {database:Identifier}.token_revocations
(
    tenant      LowCardinality(String),
    jti         String,
    task_id     String,
    agent_id    String,
    time        DateTime64(6, 'UTC'),
    expires_at  DateTime64(6, 'UTC') COMMENT 'When the token would have expired anyway (rows past it are not loaded at start)',
    actor       String,
    reason      String,
    ingested_at DateTime64(6, 'UTC') DEFAULT now64(6)
)
ENGINE = ReplacingMergeTree(ingested_at)
ORDER BY (tenant, jti);

-- Every policy decision (start_task, call_tool, lease_secret), allowed or denied.
CREATE TABLE IF NOT EXISTS {database:Identifier}.policy_decisions
(
    id          String,
    tenant      LowCardinality(String),
    time        DateTime64(6, 'UTC'),
    action      LowCardinality(String) COMMENT 'start_task, call_tool or lease_secret',
    agent_id    String,
    task_id     String,
    task_type   LowCardinality(String),
    resource    String COMMENT 'The task type, tool or secret asked for',
    decision    LowCardinality(String) COMMENT 'allow or deny',
    policies    Array(String) COMMENT 'Ids of the policies that decided (empty: default deny)',
    reasons     Array(String) COMMENT 'Reasons decided before the policies (task revoked, token inactive, agent blocked)',
    errors      Array(String) COMMENT 'Policies that failed to evaluate',
    context     String COMMENT 'The request context as JSON' CODEC(ZSTD(1)),
    ingested_at DateTime64(6, 'UTC') DEFAULT now64(6),
    INDEX time_minmax time TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(time)
ORDER BY (tenant, id)
TTL toDateTime(time) + INTERVAL 180 DAY;
