-- Operator feedback: an alert marked as a false positive makes its task count as normal for its type.
-- One row per task and kind (deterministic id); read with FINAL.

CREATE TABLE IF NOT EXISTS {database:Identifier}.feedback
(
    id          String COMMENT 'Deterministic: one row per task and kind',
    tenant      LowCardinality(String),
    task_id     String,
    task_type   LowCardinality(String),
    agent_id    String,
    alert_id    String COMMENT 'The alert the operator marked',
    kind        LowCardinality(String) COMMENT 'false_positive',
    actor       String,
    reason      String,
    time        DateTime64(6, 'UTC'),
    ingested_at DateTime64(6, 'UTC') DEFAULT now64(6)
)
ENGINE = ReplacingMergeTree(ingested_at)
ORDER BY (tenant, task_id, kind);
