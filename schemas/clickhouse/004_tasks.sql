-- Task state snapshots: every state change inserts a row with a higher version; FINAL keeps the row with the
-- highest version per (tenant, task_id), which is the current state.

CREATE TABLE IF NOT EXISTS {database:Identifier}.tasks
(
    tenant                 LowCardinality(String),
    task_id                String,
    task_type              LowCardinality(String),
    agent_id               String,
    status                 LowCardinality(String) COMMENT 'active, completed or revoked',
    score                  Float64 COMMENT 'Highest verdict score so far, 0-100',
    decision               LowCardinality(String) COMMENT 'allow, alert or revoke',
    regime                 LowCardinality(String),
    reasons                Array(String),
    count_tool_call        UInt64,
    count_data_access      UInt64,
    count_privilege_change UInt64,
    started_at             DateTime64(6, 'UTC'),
    last_event_at          DateTime64(6, 'UTC'),
    ended_at               Nullable(DateTime64(6, 'UTC')) COMMENT 'NULL while the task runs',
    version                UInt64 COMMENT 'Monotonic per task, the highest is the current state',
    updated_at             DateTime64(6, 'UTC') DEFAULT now64(6)
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (tenant, task_id);
