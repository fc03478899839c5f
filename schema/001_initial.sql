-- keysvc schema, version 1: keys, accounts, orders, certificates.
-- Every row carries its tenant; the default tenant is 'default'.

CREATE TABLE keys (
    id            bigserial PRIMARY KEY,
    tenant        text        NOT NULL,
    purpose       text        NOT NULL CHECK (purpose IN ('account', 'certificate')),
    name          text        NOT NULL,   -- private key name (acmebot), or the CA for account keys
    key_type      text        NOT NULL CHECK (key_type IN ('rsa', 'ecdsa')),
    params        text        NOT NULL,   -- 'rsa2048', 'secp256r1', ...
    role          text        NOT NULL CHECK (role IN ('primary', 'backup', 'previous', 'retired')),
    token_label   text        NOT NULL,
    token_serial  text        NOT NULL,
    ckaid         bytea       NOT NULL,
    label         text        NOT NULL,   -- CKA_LABEL, for humans
    spki_sha256   text        NOT NULL,   -- base64 SHA-256 of the SubjectPublicKeyInfo (HPKP/TLSA pin)
    created_at    timestamptz NOT NULL DEFAULT now(),
    retired_at    timestamptz,
    UNIQUE (token_serial, ckaid)
);
-- At most one live key per role for each key name and type.
CREATE UNIQUE INDEX keys_live_role ON keys (tenant, purpose, name, key_type, role)
    WHERE role <> 'retired';

CREATE TABLE accounts (
    id            bigserial PRIMARY KEY,
    tenant        text        NOT NULL,
    directory_url text        NOT NULL,
    key_id        bigint      NOT NULL REFERENCES keys (id),
    account_url   text,                   -- NULL until the CA has accepted the account
    contact       text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant, directory_url)
);

CREATE TABLE orders (
    id               bigserial PRIMARY KEY,
    tenant           text        NOT NULL,
    account_id       bigint      NOT NULL REFERENCES accounts (id),
    certificate_name text        NOT NULL,
    key_type         text        NOT NULL,
    key_id           bigint      REFERENCES keys (id),  -- set once the names are validated
    names            text[]      NOT NULL,
    url              text,
    status           text        NOT NULL,  -- created, valid, failed (or the CA's status)
    error            text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE certificates (
    id            bigserial PRIMARY KEY,
    tenant        text        NOT NULL,
    name          text        NOT NULL,
    key_type      text        NOT NULL,
    key_id        bigint      NOT NULL REFERENCES keys (id),
    order_id      bigint      REFERENCES orders (id),
    common_name   text        NOT NULL,
    alt_names     text[]      NOT NULL,
    serial        text        NOT NULL,   -- hex, upper case
    not_before    timestamptz NOT NULL,
    not_after     timestamptz NOT NULL,
    cert_pem      text        NOT NULL,   -- the leaf
    chain_pem     text        NOT NULL,   -- the intermediates, leaf excluded
    is_current    boolean     NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX certificates_current ON certificates (tenant, name, key_type) WHERE is_current;
