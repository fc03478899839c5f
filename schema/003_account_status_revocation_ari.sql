-- ACME protocol completeness: the account's status at the CA, revoked
-- certificates, and the CA's renewal information (ARI, RFC 9773).

-- "deactivated" once keysvc deactivated the account (RFC 8555 7.3.6); a
-- deactivated account is never used again, and the next run makes a new one.
ALTER TABLE accounts ADD COLUMN status text NOT NULL DEFAULT 'valid'
    CHECK (status IN ('valid', 'deactivated', 'revoked'));
ALTER TABLE accounts DROP CONSTRAINT accounts_tenant_directory_url_key;
CREATE UNIQUE INDEX accounts_in_use ON accounts (tenant, directory_url) WHERE status = 'valid';

-- A revoked certificate is no longer current; these say when and why
-- (the RFC 5280 CRLReason code, NULL when none was given).
ALTER TABLE certificates ADD COLUMN revoked_at timestamptz;
ALTER TABLE certificates ADD COLUMN revocation_reason integer
    CHECK (revocation_reason BETWEEN 0 AND 10);

-- ARI: the window the CA last suggested, the moment keysvc picked inside
-- it, and when to ask the CA again (its Retry-After).
ALTER TABLE certificates ADD COLUMN ari_window_start timestamptz;
ALTER TABLE certificates ADD COLUMN ari_window_end   timestamptz;
ALTER TABLE certificates ADD COLUMN ari_renew_at     timestamptz;
ALTER TABLE certificates ADD COLUMN ari_next_check   timestamptz;
