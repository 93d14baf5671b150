-- What classification read from a tool call's recorded arguments and result (services/core/counterparties.ts), as
-- JSON text: {"counterparties":[{"kind":"email","key":"3f0c…"}],"resultCounterparties":[…],"resultRecorded":true,
-- "amount":120,"argumentKeys":["amount","to"]}. Counterparties are keyed hashes, never the values. Empty for
-- events that are no tool call and for events written before 013. Replays of a task (the processor after a
-- restart, the learner) read them back, so the detector sees the same counterparties it saw live.

ALTER TABLE {database:Identifier}.events
    ADD COLUMN IF NOT EXISTS tool_facts String DEFAULT '' COMMENT 'JSON: counterparties (keyed hashes) of the tool call''s arguments and result, resultRecorded, amount, argumentKeys; empty before 013' CODEC(ZSTD(1)) AFTER tool_call_id;
