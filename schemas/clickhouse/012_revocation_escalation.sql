-- Whether a revocation counts toward escalating its agent, and the end user / conversation its task named
-- (services/core/escalation-policy.ts), as JSON text: {"counts":true,"basis":"hard_rule","endUser":"u-1"}.
-- Empty for revocations written before: a manual one counts, a detector one does not. The credentials authority
-- rebuilds its escalation window from it at start.

ALTER TABLE {database:Identifier}.revocations
    ADD COLUMN IF NOT EXISTS escalation String DEFAULT '' COMMENT 'JSON: counts toward escalation, why, the task''s end user and conversation; empty before 012' AFTER event_id;
