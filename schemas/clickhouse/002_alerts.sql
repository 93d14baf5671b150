-- Alerts (decision alert or revoke, shadow or not). Kept without a TTL: they are the audit trail.
-- Sorted by (tenant, id) so that rows with the same id collapse whatever their other columns hold; reads use
-- FINAL. The minmax index on time serves time-range filters (the API's sinceMs, Grafana's time picker).

CREATE TABLE IF NOT EXISTS {database:Identifier}.alerts
(
    id          String,
    tenant      LowCardinality(String),
    task_id     String,
    task_type   LowCardinality(String),
    agent_id    String,
    event_id    String COMMENT 'The event that raised the alert (events.id)',
    time        DateTime64(6, 'UTC'),
    score       Float64 COMMENT 'Verdict score 0-100',
    decision    LowCardinality(String) COMMENT 'alert or revoke',
    regime      LowCardinality(String) COMMENT 'rules, type_baseline or agent_baseline',
    reasons     Array(String),
    shadow      Bool COMMENT 'The decision was recorded but not acted on',
    ingested_at DateTime64(6, 'UTC') DEFAULT now64(6),
    INDEX time_minmax time TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree(ingested_at)
ORDER BY (tenant, id);
