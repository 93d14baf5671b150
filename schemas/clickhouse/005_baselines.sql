-- Learned baselines per task type (agent_id empty) and per agent within a type. FINAL keeps the row with the
-- latest updated_at per key.

CREATE TABLE IF NOT EXISTS {database:Identifier}.baselines
(
    tenant     LowCardinality(String),
    task_type  LowCardinality(String),
    agent_id   String COMMENT 'Empty for the task type baseline',
    tasks      UInt64 COMMENT 'Completed benign tasks the baseline was learned from',
    model      String COMMENT 'The detector serialized baseline (JSON)' CODEC(ZSTD(3)),
    updated_at DateTime64(6, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (tenant, task_type, agent_id);
