-- Revocations and restores, automatic (source detector) and manual. Kept without a TTL: audit trail.
-- Same layout and read rule (FINAL) as alerts.

CREATE TABLE IF NOT EXISTS {database:Identifier}.revocations
(
    id          String,
    tenant      LowCardinality(String),
    task_id     String,
    task_type   LowCardinality(String),
    agent_id    String,
    action      LowCardinality(String) COMMENT 'revoke or restore',
    source      LowCardinality(String) COMMENT 'detector or manual',
    actor       String COMMENT 'Who acted: the detector or a person',
    reason      String,
    reasons     Array(String),
    score       Float64,
    event_id    String COMMENT 'The triggering event for automatic revocations, empty for manual ones',
    time        DateTime64(6, 'UTC'),
    ingested_at DateTime64(6, 'UTC') DEFAULT now64(6),
    INDEX time_minmax time TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree(ingested_at)
ORDER BY (tenant, id);
