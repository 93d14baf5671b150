-- Task trees: the task a task was started inside (`tripline.task.parent_id`, the child's claim; services/core/task-tree.ts).
-- Empty for a task that declared none and for tasks written before. Read to list a task's children and to kill a
-- killed task's descendants.

ALTER TABLE {database:Identifier}.tasks
    ADD COLUMN IF NOT EXISTS parent_task_id String DEFAULT '' COMMENT 'The parent task the task declared (tripline.task.parent_id); empty for none' AFTER task_name;

ALTER TABLE {database:Identifier}.tasks
    ADD INDEX IF NOT EXISTS parent_task_id_bloom parent_task_id TYPE bloom_filter(0.01) GRANULARITY 4;
