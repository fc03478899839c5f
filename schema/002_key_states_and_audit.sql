-- Key states, so that generation and rollover survive a crash at any step
-- (docs/keyservice.md), and the audit hook's events.

-- pending:    the row is written, the key may or may not be on the token yet
-- live:       the key is on the token
-- destroying: the key is to be removed from the token
-- destroyed:  gone; the row stays as history
ALTER TABLE keys ADD COLUMN state text NOT NULL DEFAULT 'live'
    CHECK (state IN ('pending', 'live', 'destroying', 'destroyed'));
-- Before this version a retired key was destroyed with its retirement.
UPDATE keys SET state = 'destroyed' WHERE role = 'retired';

-- A key being made has the role 'incoming' until the step that gives it its
-- role commits.
ALTER TABLE keys DROP CONSTRAINT keys_role_check;
ALTER TABLE keys ADD CONSTRAINT keys_role_check
    CHECK (role IN ('primary', 'backup', 'previous', 'retired', 'incoming'));
DROP INDEX keys_live_role;
CREATE UNIQUE INDEX keys_live_role ON keys (tenant, purpose, name, key_type, role)
    WHERE role IN ('primary', 'backup', 'previous');
CREATE INDEX keys_unsettled ON keys (tenant, state) WHERE state IN ('pending', 'destroying');

-- Every key operation: a 'started' row written before it happens, and an
-- outcome row ('ok' or 'failed', pointing at it) after.  Rows are only ever
-- inserted: a trigger refuses UPDATE, DELETE and TRUNCATE, so the trail is not
-- rewritten by keysvc or by a mistake (a table owner can still drop the
-- trigger; the signer's own log is the second record).
CREATE TABLE audit_events (
    id            bigserial PRIMARY KEY,
    tenant        text        NOT NULL,
    at            timestamptz NOT NULL DEFAULT now(),
    operation     text        NOT NULL,   -- generate, sign_jws, sign_csr, destroy, rollover
    purpose       text        NOT NULL,   -- account, certificate
    token_serial  text        NOT NULL,
    ckaid         bytea       NOT NULL,
    outcome       text        NOT NULL CHECK (outcome IN ('started', 'ok', 'failed')),
    started_id    bigint      REFERENCES audit_events (id),
    detail        text,
    CHECK ((outcome = 'started') = (started_id IS NULL))
);
CREATE INDEX audit_events_key ON audit_events (token_serial, ckaid);
CREATE UNIQUE INDEX audit_events_outcome ON audit_events (started_id);

CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only';
END
$$;
CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();

-- Account keys may be Ed25519 where the CA accepts EdDSA.
ALTER TABLE keys DROP CONSTRAINT keys_key_type_check;
ALTER TABLE keys ADD CONSTRAINT keys_key_type_check CHECK (key_type IN ('rsa', 'ecdsa', 'ed25519'));
