-- A task's declared name. A task whose first spans came without a task id is keyed by its trace id; a task id
-- declared later in the trace (a wrapper span around an agent run ends, and is exported, after the framework's
-- spans) becomes its name, and the API finds the task by either.

ALTER TABLE {database:Identifier}.tasks
    ADD COLUMN IF NOT EXISTS task_name String DEFAULT '' COMMENT 'The task id declared after the task began under its trace id; empty otherwise' AFTER task_id;

ALTER TABLE {database:Identifier}.tasks
    ADD INDEX IF NOT EXISTS task_name_bloom task_name TYPE bloom_filter(0.01) GRANULARITY 4;
