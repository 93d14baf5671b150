-- Published baseline books (issue 16): in the distributed mode one learner rebuilds every baseline from the stored
-- tasks and writes the whole book as one versioned row; processors poll the newest version and swap it in, so
-- every processor scores a task type against the same book. Newer versions only; read with FINAL.

CREATE TABLE IF NOT EXISTS {database:Identifier}.baseline_books
(
    version      UInt64 COMMENT 'Increasing; the newest is in force',
    built_at     DateTime64(3, 'UTC'),
    learner      String COMMENT 'The process that built it',
    tasks        UInt64 COMMENT 'Tasks learned',
    feedback     UInt64 COMMENT 'False-positive marks in the store when it was built',
    records      String COMMENT 'JSON array of BaselineRecord (services/store/store.ts)',
    ingested_at  DateTime64(6, 'UTC') DEFAULT now64(6)
)
ENGINE = ReplacingMergeTree(ingested_at)
ORDER BY version;
