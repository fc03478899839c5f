-- Certificate lifecycle: a key whose certificates were revoked by
-- `keysvc run --revoke` is rolled over by the next run.  The mark is on the
-- key row (the primary that was in use) and is cleared by the rollover,
-- which moves that key out of the primary role.
ALTER TABLE keys ADD COLUMN rollover_requested_at timestamptz;
