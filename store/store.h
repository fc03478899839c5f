/*
 * store: keysvc's state in PostgreSQL.
 *
 * Every query is parameterised.  Records filled by a lookup own their
 * strings (free them with the _clear() function); the insert functions only
 * read a record's strings, which may be borrowed.  Lookups return 1 when a
 * row was found, 0 when none, -1 on error (with err naming what was asked).
 */
#ifndef STORE_STORE_H
#define STORE_STORE_H

#include "ks_err.h"

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define STORE_MAX_CKAID 64

typedef struct store store;

store *store_connect(const char *conninfo, ks_err *err);
void store_close(store *s);

/* Applies the embedded migrations that are not yet applied, in order, each in
 * its own transaction, serialised against other workers by an advisory lock.
 * Refuses a database whose schema is newer than this program. */
int store_migrate(store *s, ks_err *err);

/* Highest applied migration version (0 for an empty database). */
int store_schema_version(store *s, int *version, ks_err *err);

/* Takes the session-level advisory lock named `name` if it is free: *got is
 * 1 when this connection now holds it (until it closes), 0 when another
 * session does. */
int store_try_lock(store *s, const char *name, int *got, ks_err *err);

int store_begin(store *s, ks_err *err);
int store_commit(store *s, ks_err *err);
void store_rollback(store *s);

typedef struct store_key {
    int64_t id;
    char *tenant;
    char *purpose; /* "account" or "certificate" */
    char *name;
    char *key_type; /* "rsa" or "ecdsa" */
    char *params;   /* "rsa2048", "secp256r1", ... */
    char *role;     /* "primary", "backup", "previous", "retired", "incoming" */
    char *state;    /* "pending", "live", "destroying", "destroyed" */
    char *token_label;
    char *token_serial;
    unsigned char ckaid[STORE_MAX_CKAID];
    size_t ckaid_len;
    char *label;
    char *spki_sha256;
    time_t created_at;
    int rollover_requested; /* its certificates were revoked: roll it over */
} store_key;

void store_key_clear(store_key *k);

/* Inserts a key row; k->id and k->created_at are set on success. */
int store_key_insert(store *s, store_key *k, ks_err *err);

/* Every live key (of one tenant, or all when NULL), ordered by tenant,
 * purpose, name, type and role; *rows as for store_keys_in_state. */
int store_keys_live(store *s, const char *tenant, store_key **rows, size_t *n, ks_err *err);

/* Every key of a tenant in a state ("pending", "destroying"), for recovery;
 * *rows newly allocated (free each with store_key_clear, then the array). */
int store_keys_in_state(store *s, const char *tenant, const char *state, store_key **rows,
                        size_t *n, ks_err *err);

/* Records a key's SPKI pin once its public half is known. */
int store_key_set_pin(store *s, int64_t id, const char *spki_sha256, ks_err *err);

/* Moves a key from a role and state (from_role NULL: any role) to another
 * (retired_at is set for "retired"); *moved is 0 when the key was not in
 * that role and state, and nothing changed. */
int store_key_move(store *s, int64_t id, const char *from_role, const char *from_state,
                   const char *to_role, const char *to_state, int *moved, ks_err *err);

/* The rollover, in one transaction, each key checked to be where it was
 * found: an old previous key (0: none) is retired for destruction; the
 * primary becomes the previous key; the backup becomes the primary; the
 * incoming key becomes the live backup. */
int store_key_rollover(store *s, int64_t primary_id, int64_t backup_id, int64_t incoming_id,
                       int64_t old_previous_id, ks_err *err);

/* Whether a current certificate uses the key. */
int store_key_in_use(store *s, int64_t id, int *in_use, ks_err *err);

/* Audit events, insert-only: begin writes a "started" event before the
 * operation (its id in *event); end adds the outcome as a second event
 * pointing at it. */
int store_audit_begin(store *s, const char *tenant, const char *operation, const char *purpose,
                      const char *token_serial, const unsigned char *ckaid, size_t ckaid_len,
                      long long *event, ks_err *err);
int store_audit_end(store *s, long long event, int ok, const char *detail, ks_err *err);

/* The live key of a role for a key name and type. */
int store_key_find(store *s, const char *tenant, const char *purpose, const char *name,
                   const char *key_type, const char *role, store_key *out, ks_err *err);

int store_key_get(store *s, int64_t id, store_key *out, ks_err *err);

/* The key row for a token object, whatever its role. */
int store_key_find_by_ckaid(store *s, const char *token_serial, const unsigned char *ckaid,
                            size_t ckaid_len, store_key *out, ks_err *err);

typedef struct store_account {
    int64_t id;
    char *tenant;
    char *directory_url;
    int64_t key_id;
    char *account_url; /* NULL until registered */
    char *contact;
} store_account;

void store_account_clear(store_account *a);
int store_account_find(store *s, const char *tenant, const char *directory_url,
                       store_account *out, ks_err *err);
int store_account_insert(store *s, store_account *a, ks_err *err);
int store_account_set_url(store *s, int64_t id, const char *account_url, const char *contact,
                          ks_err *err);

/* The account was deactivated at the CA: it is never used again, and its
 * key is retired for destruction (in one transaction). */
int store_account_deactivated(store *s, int64_t id, int64_t key_id, ks_err *err);

/* After an ACME keyChange: in one transaction the account points at the new
 * key, the old primary is retired for destruction and the new key (live,
 * role "incoming") becomes the primary.  Fails, changing nothing, when any
 * row is not as expected. */
int store_account_switch_key(store *s, int64_t account_id, int64_t old_key, int64_t new_key,
                             ks_err *err);

typedef struct store_order {
    int64_t id;
    char *tenant;
    int64_t account_id;
    char *certificate_name;
    char *key_type;
    int64_t key_id;
    char **names;
    size_t n_names;
    char *url;
    char *status;
    char *error;
} store_order;

/* Inserts an order row (o->id set); key_id 0 is stored as NULL. */
int store_order_insert(store *s, store_order *o, ks_err *err);
/* Records the CA's URL, the status and an error text (either may be NULL). */
int store_order_update(store *s, int64_t id, const char *url, const char *status,
                       const char *error, ks_err *err);
/* Records the key the order's CSR is made with. */
int store_order_set_key(store *s, int64_t id, int64_t key_id, ks_err *err);

/* ACME renewal information kept with a certificate (0: not known). */
typedef struct store_ari {
    time_t window_start;
    time_t window_end;
    time_t renew_at;   /* the moment picked inside the window */
    time_t next_check; /* when to ask the CA again */
} store_ari;

typedef struct store_cert {
    int64_t id;
    char *tenant;
    char *name;
    char *key_type;
    int64_t key_id;
    int64_t order_id; /* 0 = none */
    char *common_name;
    char **alt_names;
    size_t n_alt_names;
    char *serial;
    time_t not_before;
    time_t not_after;
    char *cert_pem;
    char *chain_pem;
    char *directory_url; /* lookup only: the CA it came from (NULL if unknown) */
    store_ari ari;       /* lookup only */
} store_cert;

void store_cert_clear(store_cert *c);

/* The current certificate for a name and key type. */
int store_cert_find_current(store *s, const char *tenant, const char *name, const char *key_type,
                            store_cert *out, ks_err *err);

/* Makes `c` the current certificate for its name and key type (the previous
 * one stays, no longer current), in one transaction.  c->id is set. */
int store_cert_insert_current(store *s, store_cert *c, ks_err *err);

/* Marks the live primary keys of a certificate key name (every type) for
 * rollover by the next run; *marked counts them. */
int store_key_request_rollover(store *s, const char *tenant, const char *name, int *marked,
                               ks_err *err);

/* Marks a certificate revoked (with a CRLReason code, -1: none) and no
 * longer current, so that the next run issues a replacement. */
int store_cert_revoked(store *s, int64_t id, int reason, ks_err *err);

int store_cert_set_ari(store *s, int64_t id, const store_ari *ari, ks_err *err);

#endif
