-- Key states, so that generation and rollover survive a crash at any step
-- (docs/keyservice.md), and the audit hook's events.

-- pending:    the row is written, the key may or may not be on the token yet
-- live:       the key is on the token
-- destroying: the key is to be removed from the token
-- destroyed:  gone; the row stays as history
ALTER TABLE keys ADD COLUMN state text NOT NULL DEFAULT 'live'
    CHECK (state IN ('pending', 'live', 'destroying', 'destroyed'));

-- A key being made has the role 'incoming' until the step that gives it its
-- role commits.
ALTER TABLE keys DROP CONSTRAINT keys_role_check;
ALTER TABLE keys ADD CONSTRAINT keys_role_check
    CHECK (role IN ('primary', 'backup', 'previous', 'retired', 'incoming'));
DROP INDEX keys_live_role;
CREATE UNIQUE INDEX keys_live_role ON keys (tenant, purpose, name, key_type, role)
    WHERE role IN ('primary', 'backup', 'previous');
CREATE INDEX keys_unsettled ON keys (tenant, state) WHERE state IN ('pending', 'destroying');

-- Every key operation: written before it happens, its outcome after.
CREATE TABLE audit_events (
    id            bigserial PRIMARY KEY,
    tenant        text        NOT NULL,
    at            timestamptz NOT NULL DEFAULT now(),
    operation     text        NOT NULL,   -- generate, sign_jws, sign_csr, destroy, rollover
    purpose       text        NOT NULL,   -- account, certificate
    token_serial  text        NOT NULL,
    ckaid         bytea       NOT NULL,
    outcome       text        NOT NULL DEFAULT 'started'
                  CHECK (outcome IN ('started', 'ok', 'failed')),
    detail        text,
    finished_at   timestamptz
);
CREATE INDEX audit_events_key ON audit_events (token_serial, ckaid);

-- Account keys may be Ed25519 where the CA accepts EdDSA.
ALTER TABLE keys DROP CONSTRAINT keys_key_type_check;
ALTER TABLE keys ADD CONSTRAINT keys_key_type_check CHECK (key_type IN ('rsa', 'ecdsa', 'ed25519'));
