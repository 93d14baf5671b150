-- Agent tokens bound to the agent ids they may speak for (issue 14): exact ids and prefixes written `prefix*`
-- (services/core/agent-binding.ts). Empty for a fleet-wide agent token (the first-start and configured ones, and
-- every token made before this column) and for every other role.

ALTER TABLE {database:Identifier}.access_tokens
    ADD COLUMN IF NOT EXISTS agents Array(String) DEFAULT [] COMMENT 'Agent ids (and prefix*) an agent token may speak for; empty: every agent of its tenant' AFTER superuser;
