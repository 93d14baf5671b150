-- One row per classified span with the verdict it got.
--
-- Deduplication: the id is deterministic (trace id + span id), and the other sorting-key columns (tenant,
-- task_id, start_time) come from the same span, so a replayed event has the same sorting key and
-- ReplacingMergeTree collapses it. Merges happen in the background at an unknown time, so every read adds
-- FINAL (see services/store/clickhouse-store.ts). Among copies the one with the latest ingested_at wins.
--
-- Time columns are DateTime64(6, 'UTC'): microseconds, and the column time zone is fixed so a text value is
-- read as UTC whatever the server or process time zone is.
--
-- Retention: 90 days after the row was written. (Not after start_time: an agent with a skewed clock, or a
-- replay of old spans, must not have its events silently dropped at insert.) Change it with
--   ALTER TABLE tripline.events MODIFY TTL toDateTime(ingested_at) + INTERVAL 30 DAY

CREATE TABLE IF NOT EXISTS {database:Identifier}.events
(
    id                   String COMMENT 'Deterministic event id (trace id + span id)',
    tenant               LowCardinality(String),
    task_id              String,
    task_type            LowCardinality(String),
    agent_id             String,
    kind                 LowCardinality(String) COMMENT 'tool_call, data_access or privilege_change',
    name                 String COMMENT 'Span name',
    trace_id             String,
    span_id              String,
    parent_span_id       String,
    start_time           DateTime64(6, 'UTC'),
    end_time             DateTime64(6, 'UTC'),
    duration_ms          Float64 ALIAS (toUnixTimestamp64Micro(end_time) - toUnixTimestamp64Micro(start_time)) / 1000,
    error                Bool,
    error_type           Nullable(String),
    tool_name            LowCardinality(Nullable(String)) COMMENT 'NULL when the event has no tool detail',
    tool_type            LowCardinality(Nullable(String)),
    tool_side_effect     LowCardinality(Nullable(String)) COMMENT 'read, write or destructive',
    tool_target          Nullable(String),
    tool_call_id         Nullable(String),
    data_resource        Nullable(String) COMMENT 'NULL when the event has no data-access detail',
    data_system          LowCardinality(Nullable(String)),
    data_operation       LowCardinality(Nullable(String)),
    data_rows            Nullable(UInt64),
    data_bytes           Nullable(UInt64),
    data_classification  LowCardinality(Nullable(String)) COMMENT 'public, internal, confidential or restricted',
    data_host            Nullable(String),
    privilege_action     LowCardinality(Nullable(String)) COMMENT 'NULL when the event has no privilege detail',
    scopes_before        Array(String),
    scopes_after         Array(String),
    privilege_resource   Nullable(String),
    privilege_granted_by Nullable(String),
    privilege_approved   Nullable(Bool),
    attributes           String COMMENT 'JSON object of the key span attributes (values keep their JSON type), e.g. JSONExtractString(attributes, ''url.full'')' CODEC(ZSTD(1)),
    score                Float64 COMMENT 'Verdict score 0-100',
    decision             LowCardinality(String) COMMENT 'allow, alert or revoke',
    regime               LowCardinality(String) COMMENT 'rules, type_baseline or agent_baseline',
    reasons              Array(String) COMMENT 'The contributions reasons, highest score first',
    contributions        String COMMENT 'JSON array of feature, score and reason objects' CODEC(ZSTD(1)),
    hard_rule            LowCardinality(Nullable(String)),
    shadow               Bool COMMENT 'The decision was recorded but not acted on',
    ingested_at          DateTime64(6, 'UTC') DEFAULT now64(6),
    INDEX start_time_minmax start_time TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree(ingested_at)
PARTITION BY toYYYYMM(start_time)
ORDER BY (tenant, task_id, start_time, id)
TTL toDateTime(ingested_at) + INTERVAL 90 DAY;
