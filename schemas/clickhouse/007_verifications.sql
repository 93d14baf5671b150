-- The outcome of each revocation: did the kill take effect? One row per revocation and state change; the
-- row with the highest version is current (pending, then verified or failed; a verified outcome turns failed
-- if evidence of an authorised call after the revocation arrives late).

CREATE TABLE IF NOT EXISTS {database:Identifier}.verifications
(
    revocation_id   String COMMENT 'revocations.id',
    tenant          LowCardinality(String),
    task_id         String,
    task_type       LowCardinality(String),
    agent_id        String,
    outcome         LowCardinality(String) COMMENT 'pending, verified or failed',
    revoked_at      DateTime64(6, 'UTC'),
    decided_at      Nullable(DateTime64(6, 'UTC')),
    acknowledged_at Nullable(DateTime64(6, 'UTC')) COMMENT 'When the agent helper acknowledged the revocation',
    checks          String COMMENT 'JSON: introspection, leases, agent_stopped, acknowledged (each ok + detail)' CODEC(ZSTD(1)),
    failures        Array(String) COMMENT 'What failed, for people',
    version         UInt64,
    updated_at      DateTime64(6, 'UTC') DEFAULT now64(6)
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (tenant, revocation_id);
