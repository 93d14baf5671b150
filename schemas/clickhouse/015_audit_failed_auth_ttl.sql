-- Failed authentication (a request to a write route without a valid token: no tenant, empty token id) is recorded
-- in the audit trail too, but anyone can send it: such rows expire after 7 days, so they cannot fill the store.
-- Every other audit row is kept (no TTL). The writer also caps them per minute (services/auth/audit-trail.ts).
ALTER TABLE {database:Identifier}.audit_log
    MODIFY TTL toDateTime(time) + INTERVAL 7 DAY DELETE WHERE tenant = '';
