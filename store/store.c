#include "store.h"

#include "ks_clock.h"

#include "ks_log.h"
#include "ks_util.h"
#include "migrations.h"

#include <json-c/json.h>
#include <libpq-fe.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Taken by every migration run so that two workers never migrate at once. */
#define MIGRATION_LOCK_KEY 0x6b657973 /* "keys" */

struct store {
    PGconn *conn;
};

/* Error text from libpq, one line. */
static int pq_fail(ks_err *err, const char *what, PGconn *conn, const PGresult *res)
{
    const char *msg = res ? PQresultErrorMessage(res) : PQerrorMessage(conn);
    char line[512];
    snprintf(line, sizeof(line), "%s", msg && *msg ? msg : "unknown error");
    line[strcspn(line, "\n")] = '\0';
    return ks_fail(err, "database: %s: %s", what, line);
}

/* Server notices ("relation already exists, skipping") are for debugging,
 * not for the operator's terminal. */
static void notice_to_debug_log(void *arg, const char *message)
{
    (void)arg;
    char line[512];
    snprintf(line, sizeof(line), "%s", message);
    line[strcspn(line, "\n")] = '\0';
    ks_debug("database: %s", line);
}

store *store_connect(const char *conninfo, ks_err *err)
{
    store *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        ks_fail(err, "out of memory");
        return NULL;
    }
    s->conn = PQconnectdb(conninfo ? conninfo : "");
    if (PQstatus(s->conn) != CONNECTION_OK) {
        pq_fail(err, "connecting", s->conn, NULL);
        store_close(s);
        return NULL;
    }
    PQsetNoticeProcessor(s->conn, notice_to_debug_log, NULL);
    return s;
}

void store_close(store *s)
{
    if (s == NULL)
        return;
    PQfinish(s->conn);
    free(s);
}

/* Runs a parameterised statement; text parameters, text results.  Returns
 * the result (caller clears) or NULL with err set. */
static PGresult *exec_params(store *s, const char *what, const char *sql, int n,
                             const char *const *values, ks_err *err)
{
    PGresult *res = PQexecParams(s->conn, sql, n, NULL, values, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        pq_fail(err, what, s->conn, res);
        PQclear(res);
        return NULL;
    }
    return res;
}

/* A parameterised statement whose result is not needed: 0 or -1. */
static int exec_command(store *s, const char *what, const char *sql, int n,
                        const char *const *values, ks_err *err)
{
    PGresult *res = exec_params(s, what, sql, n, values, err);
    PQclear(res);
    return res ? 0 : -1;
}

static int exec_simple(store *s, const char *what, const char *sql, ks_err *err)
{
    return exec_command(s, what, sql, 0, NULL, err);
}

/* The first key of keysvc's advisory locks ("KSVC"), so that they do not
 * collide with another application's one-key locks in a shared database. */
#define KS_LOCK_CLASS "1263752771"

int store_try_lock(store *s, const char *name, int *got, ks_err *err)
{
    const char *params[] = {name};
    PGresult *res = exec_params(s, "taking a lock",
                                "SELECT pg_try_advisory_lock(" KS_LOCK_CLASS ", hashtext($1))", 1, params, err);
    if (res == NULL)
        return -1;
    *got = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    return 0;
}

int store_begin(store *s, ks_err *err)
{
    return exec_simple(s, "BEGIN", "BEGIN", err);
}

int store_commit(store *s, ks_err *err)
{
    return exec_simple(s, "COMMIT", "COMMIT", err);
}

void store_rollback(store *s)
{
    PQclear(PQexec(s->conn, "ROLLBACK"));
}

static int64_t get_i64(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

/* A copy of a text column; NULL for SQL NULL. */
static char *get_str(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : strdup(PQgetvalue(res, row, col));
}

static void i64_text(char *buf, size_t cap, int64_t v)
{
    snprintf(buf, cap, "%lld", (long long)v);
}

int store_schema_version(store *s, int *version, ks_err *err)
{
    PGresult *res = exec_params(
        s, "reading schema version",
        "SELECT coalesce(max(version), 0) FROM keysvc_schema_migrations", 0, NULL, err);
    if (res == NULL)
        return -1;
    *version = (int)get_i64(res, 0, 0);
    PQclear(res);
    return 0;
}

/* Hex SHA-256 of a migration's text: an applied migration must never change. */
static void migration_checksum(const store_migration *m, char hex[65])
{
    unsigned char digest[32];
    unsigned int len = 0;
    EVP_Digest(m->sql, strlen(m->sql), digest, &len, EVP_sha256(), NULL);
    for (unsigned i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", digest[i]);
}

static int apply_migration(store *s, const store_migration *m, ks_err *err)
{
    char version[16], checksum[65];
    snprintf(version, sizeof(version), "%d", m->version);
    migration_checksum(m, checksum);
    const char *params[] = {version, m->name, checksum};
    if (store_begin(s, err) < 0)
        return -1;
    /* A migration file may hold several statements: simple query protocol. */
    PGresult *res = PQexec(s->conn, m->sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        pq_fail(err, m->name, s->conn, res);
        PQclear(res);
        store_rollback(s);
        return -1;
    }
    PQclear(res);
    res = exec_params(s, "recording migration",
                      "INSERT INTO keysvc_schema_migrations (version, name, checksum)"
                      " VALUES ($1, $2, $3)",
                      3, params, err);
    if (res == NULL) {
        store_rollback(s);
        return -1;
    }
    PQclear(res);
    if (store_commit(s, err) < 0)
        return -1;
    ks_info("database: applied migration %s", m->name);
    return 0;
}

/* Every migration already applied must be byte for byte the one this
 * program carries: an edited migration would leave databases that differ
 * although their versions agree. */
static int check_applied_checksums(store *s, ks_err *err)
{
    PGresult *res = exec_params(s, "reading applied migrations",
                                "SELECT version, name, checksum FROM keysvc_schema_migrations"
                                " ORDER BY version",
                                0, NULL, err);
    if (res == NULL)
        return -1;
    int rc = 0;
    for (int row = 0; row < PQntuples(res) && rc == 0; row++) {
        int version = (int)get_i64(res, row, 0);
        for (unsigned i = 0; i < store_migration_count; i++) {
            char want[65];
            if (store_migrations[i].version != version)
                continue;
            migration_checksum(&store_migrations[i], want);
            if (strcmp(want, PQgetvalue(res, row, 2)) != 0)
                rc = ks_fail(err,
                             "database: applied migration %s differs from this keysvc's copy "
                             "(checksum mismatch); the schema files must never change once "
                             "applied",
                             PQgetvalue(res, row, 1));
        }
    }
    PQclear(res);
    return rc;
}

static int migrate_locked(store *s, ks_err *err)
{
    if (exec_simple(s, "creating the migrations table",
                    "CREATE TABLE IF NOT EXISTS keysvc_schema_migrations ("
                    " version integer PRIMARY KEY, name text NOT NULL,"
                    " checksum text NOT NULL,"
                    " applied_at timestamptz NOT NULL DEFAULT now())",
                    err) < 0 ||
        check_applied_checksums(s, err) < 0)
        return -1;
    int current = 0;
    if (store_schema_version(s, &current, err) < 0)
        return -1;
    int newest = store_migration_count ? store_migrations[store_migration_count - 1].version : 0;
    if (current > newest)
        return ks_fail(err,
                       "database: schema version %d is newer than this keysvc knows (%d); "
                       "upgrade keysvc",
                       current, newest);
    for (unsigned i = 0; i < store_migration_count; i++)
        if (store_migrations[i].version > current && apply_migration(s, &store_migrations[i], err) < 0)
            return -1;
    return 0;
}

int store_migrate(store *s, ks_err *err)
{
    char key[32];
    snprintf(key, sizeof(key), "%d", MIGRATION_LOCK_KEY);
    const char *params[] = {key};
    PGresult *res = exec_params(s, "taking the migration lock", "SELECT pg_advisory_lock($1)", 1,
                                params, err);
    if (res == NULL)
        return -1;
    PQclear(res);
    int rc = migrate_locked(s, err);
    PQclear(PQexecParams(s->conn, "SELECT pg_advisory_unlock($1)", 1, NULL, params, NULL, NULL,
                         0));
    return rc;
}

void store_key_clear(store_key *k)
{
    free(k->tenant);
    free(k->purpose);
    free(k->name);
    free(k->key_type);
    free(k->params);
    free(k->role);
    free(k->state);
    free(k->token_label);
    free(k->token_serial);
    free(k->label);
    free(k->spki_sha256);
    memset(k, 0, sizeof(*k));
}

static char *hex_new(const unsigned char *b, size_t n)
{
    char *out = malloc(n * 2 + 3);
    if (out == NULL)
        return NULL;
    /* bytea input format: \x followed by hex digits. */
    out[0] = '\\';
    out[1] = 'x';
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 + i * 2, 3, "%02x", b[i]);
    out[2 + n * 2] = '\0';
    return out;
}

static int hex_to_bytes(const char *hex, unsigned char *out, size_t cap, size_t *len)
{
    size_t n = strlen(hex);
    if (n % 2 != 0 || n / 2 > cap)
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(hex + i * 2, "%2x", &v) != 1)
            return -1;
        out[i] = (unsigned char)v;
    }
    *len = n / 2;
    return 0;
}

#define KEY_COLUMNS                                                                                \
    "id, tenant, purpose, name, key_type, params, role, token_label, token_serial,"               \
    " encode(ckaid, 'hex'), label, spki_sha256, extract(epoch from created_at)::bigint, state,"   \
    " rollover_requested_at IS NOT NULL"

static int key_from_row(const PGresult *res, int row, store_key *k)
{
    memset(k, 0, sizeof(*k));
    k->id = get_i64(res, row, 0);
    k->tenant = get_str(res, row, 1);
    k->purpose = get_str(res, row, 2);
    k->name = get_str(res, row, 3);
    k->key_type = get_str(res, row, 4);
    k->params = get_str(res, row, 5);
    k->role = get_str(res, row, 6);
    k->token_label = get_str(res, row, 7);
    k->token_serial = get_str(res, row, 8);
    k->label = get_str(res, row, 10);
    k->spki_sha256 = get_str(res, row, 11);
    k->created_at = (time_t)get_i64(res, row, 12);
    k->state = get_str(res, row, 13);
    k->rollover_requested = strcmp(PQgetvalue(res, row, 14), "t") == 0;
    return hex_to_bytes(PQgetvalue(res, row, 9), k->ckaid, sizeof(k->ckaid), &k->ckaid_len);
}

/* Reads zero or one row into `out` with `reader`. */
static int one_row(PGresult *res, void *out, int (*reader)(const PGresult *, int, void *),
                   const char *what, ks_err *err)
{
    int rows = PQntuples(res);
    int rc = rows == 0 ? 0 : 1;
    if (rows > 1)
        rc = ks_fail(err, "database: %s: %d rows where one was expected", what, rows);
    else if (rows == 1 && reader(res, 0, out) < 0)
        rc = ks_fail(err, "database: %s: malformed row", what);
    PQclear(res);
    return rc;
}

static int read_key(const PGresult *res, int row, void *out)
{
    return key_from_row(res, row, out);
}

int store_key_insert(store *s, store_key *k, ks_err *err)
{
    char *ckaid = hex_new(k->ckaid, k->ckaid_len);
    char created[32];
    if (ckaid == NULL)
        return ks_fail(err, "out of memory");
    snprintf(created, sizeof(created), "%lld", (long long)ks_now());
    const char *params[] = {k->tenant,      k->purpose, k->name,  k->key_type,  k->params,
                            k->role,        k->token_label,     k->token_serial, ckaid,
                            k->label,       k->spki_sha256 ? k->spki_sha256 : "",
                            k->state ? k->state : "live", created};
    /* The creation time comes from keysvc's clock, which key ages are
     * measured against (expiration_days, hpkp_days). */
    PGresult *res = exec_params(
        s, "recording key",
        "INSERT INTO keys (tenant, purpose, name, key_type, params, role, token_label,"
        " token_serial, ckaid, label, spki_sha256, state, created_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9::bytea, $10, $11, $12, to_timestamp($13))"
        " RETURNING id, extract(epoch from created_at)::bigint",
        13, params, err);
    free(ckaid);
    if (res == NULL)
        return -1;
    k->id = get_i64(res, 0, 0);
    k->created_at = (time_t)get_i64(res, 0, 1);
    PQclear(res);
    return 0;
}

int store_key_find(store *s, const char *tenant, const char *purpose, const char *name,
                   const char *key_type, const char *role, store_key *out, ks_err *err)
{
    const char *params[] = {tenant, purpose, name, key_type, role};
    PGresult *res = exec_params(s, "looking up key",
                                "SELECT " KEY_COLUMNS " FROM keys WHERE tenant = $1 AND"
                                " purpose = $2 AND name = $3 AND key_type = $4 AND role = $5"
                                " AND state = 'live'",
                                5, params, err);
    if (res == NULL)
        return -1;
    return one_row(res, out, read_key, "looking up key", err);
}

/* Reads every row of a key query into a new array. */
static int key_rows(PGresult *res, store_key **rows, size_t *n, ks_err *err)
{
    *rows = NULL;
    *n = 0;
    if (res == NULL)
        return -1;
    int count = PQntuples(res);
    *rows = calloc(count ? (size_t)count : 1, sizeof(**rows));
    if (*rows == NULL) {
        PQclear(res);
        return ks_fail(err, "out of memory");
    }
    for (int i = 0; i < count; i++) {
        if (key_from_row(res, i, &(*rows)[i]) < 0) {
            PQclear(res);
            return ks_fail(err, "database: malformed key row");
        }
        *n = (size_t)i + 1;
    }
    PQclear(res);
    return 0;
}

int store_keys_in_state(store *s, const char *tenant, const char *state, store_key **rows,
                        size_t *n, ks_err *err)
{
    const char *params[] = {tenant, state};
    return key_rows(exec_params(s, "looking up unsettled keys",
                                "SELECT " KEY_COLUMNS " FROM keys WHERE tenant = $1 AND state = $2"
                                " ORDER BY id",
                                2, params, err),
                    rows, n, err);
}

int store_keys_live(store *s, const char *tenant, store_key **rows, size_t *n, ks_err *err)
{
    const char *params[] = {tenant};
    return key_rows(exec_params(s, "listing keys",
                                "SELECT " KEY_COLUMNS " FROM keys WHERE state = 'live' AND"
                                " ($1::text IS NULL OR tenant = $1)"
                                " ORDER BY tenant, purpose, name, key_type, role",
                                1, params, err),
                    rows, n, err);
}

int store_key_set_pin(store *s, int64_t id, const char *spki_sha256, ks_err *err)
{
    char idbuf[24];
    i64_text(idbuf, sizeof(idbuf), id);
    const char *params[] = {idbuf, spki_sha256};
    return exec_command(s, "recording a key pin",
                        "UPDATE keys SET spki_sha256 = $2 WHERE id = $1", 2, params, err);
}

int store_key_move(store *s, int64_t id, const char *from_role, const char *from_state,
                   const char *to_role, const char *to_state, int *moved, ks_err *err)
{
    char idbuf[24];
    i64_text(idbuf, sizeof(idbuf), id);
    const char *params[] = {idbuf, from_role, from_state, to_role, to_state};
    PGresult *res = exec_params(s, "updating key",
                                "UPDATE keys SET role = $4, state = $5, retired_at = CASE WHEN"
                                " $4 = 'retired' THEN coalesce(retired_at, now()) END"
                                " WHERE id = $1 AND ($2::text IS NULL OR role = $2)"
                                " AND state = $3",
                                5, params, err);
    if (res == NULL)
        return -1;
    *moved = strcmp(PQcmdTuples(res), "1") == 0;
    PQclear(res);
    return 0;
}

/* One step of the rollover transaction: the key must be where the rollover
 * found it (0: no key, nothing to do). */
static int move_in_tx(store *s, int64_t id, const char *from_role, const char *from_state,
                      const char *to_role, const char *to_state, ks_err *err)
{
    int moved = 0;
    if (id == 0)
        return 0;
    if (store_key_move(s, id, from_role, from_state, to_role, to_state, &moved, err) < 0)
        return -1;
    if (!moved)
        return ks_fail(err, "key %lld is no longer the %s key (another worker changed the "
                            "keys); nothing was changed",
                       (long long)id, from_role);
    return 0;
}

int store_key_rollover(store *s, int64_t primary_id, int64_t backup_id, int64_t incoming_id,
                       int64_t old_previous_id, ks_err *err)
{
    if (store_begin(s, err) < 0)
        return -1;
    /* In this order, so that no two live keys share a role at any step. */
    if (move_in_tx(s, old_previous_id, "previous", "live", "retired", "destroying", err) < 0 ||
        move_in_tx(s, primary_id, "primary", "live", "previous", "live", err) < 0 ||
        move_in_tx(s, backup_id, "backup", "live", "primary", "live", err) < 0 ||
        move_in_tx(s, incoming_id, "incoming", "pending", "backup", "live", err) < 0 ||
        store_commit(s, err) < 0) {
        store_rollback(s);
        return ks_failp(err, "rollover");
    }
    return 0;
}

int store_key_in_use(store *s, int64_t id, int *in_use, ks_err *err)
{
    char idbuf[24];
    i64_text(idbuf, sizeof(idbuf), id);
    const char *params[] = {idbuf};
    PGresult *res = exec_params(s, "checking a key's certificates",
                                "SELECT EXISTS (SELECT 1 FROM certificates WHERE key_id = $1"
                                " AND is_current)",
                                1, params, err);
    if (res == NULL)
        return -1;
    *in_use = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    return 0;
}

int store_audit_begin(store *s, const char *tenant, const char *operation, const char *purpose,
                      const char *token_serial, const unsigned char *ckaid, size_t ckaid_len,
                      long long *event, ks_err *err)
{
    char *hex = hex_new(ckaid, ckaid_len);
    if (hex == NULL)
        return ks_fail(err, "out of memory");
    const char *params[] = {tenant, operation, purpose, token_serial, hex};
    PGresult *res = exec_params(s, "recording an audit event",
                                "INSERT INTO audit_events (tenant, operation, purpose,"
                                " token_serial, ckaid, outcome) VALUES ($1, $2, $3, $4,"
                                " $5::bytea, 'started') RETURNING id",
                                5, params, err);
    free(hex);
    if (res == NULL)
        return -1;
    *event = get_i64(res, 0, 0);
    PQclear(res);
    return 0;
}

int store_audit_end(store *s, long long event, int ok, const char *detail, ks_err *err)
{
    char idbuf[24];
    i64_text(idbuf, sizeof(idbuf), event);
    const char *params[] = {idbuf, ok ? "ok" : "failed", detail};
    PGresult *res = exec_params(s, "recording an audit outcome",
                                "INSERT INTO audit_events (tenant, operation, purpose,"
                                " token_serial, ckaid, outcome, started_id, detail)"
                                " SELECT tenant, operation, purpose, token_serial, ckaid, $2,"
                                " id, $3 FROM audit_events WHERE id = $1 AND outcome = 'started'",
                                3, params, err);
    if (res == NULL)
        return -1;
    int recorded = strcmp(PQcmdTuples(res), "1") == 0;
    PQclear(res);
    return recorded ? 0 : ks_fail(err, "audit event %lld is not a started event", event);
}

int store_key_find_by_ckaid(store *s, const char *token_serial, const unsigned char *ckaid,
                            size_t ckaid_len, store_key *out, ks_err *err)
{
    char *hex = hex_new(ckaid, ckaid_len);
    if (hex == NULL)
        return ks_fail(err, "out of memory");
    const char *params[] = {token_serial, hex};
    PGresult *res = exec_params(s, "looking up key by CKA_ID",
                                "SELECT " KEY_COLUMNS " FROM keys WHERE token_serial = $1 AND"
                                " ckaid = $2::bytea",
                                2, params, err);
    free(hex);
    if (res == NULL)
        return -1;
    return one_row(res, out, read_key, "looking up key by CKA_ID", err);
}

int store_key_get(store *s, int64_t id, store_key *out, ks_err *err)
{
    char idbuf[24];
    i64_text(idbuf, sizeof(idbuf), id);
    const char *params[] = {idbuf};
    PGresult *res = exec_params(s, "reading key",
                                "SELECT " KEY_COLUMNS " FROM keys WHERE id = $1", 1, params, err);
    if (res == NULL)
        return -1;
    return one_row(res, out, read_key, "reading key", err);
}

void store_account_clear(store_account *a)
{
    free(a->tenant);
    free(a->directory_url);
    free(a->account_url);
    free(a->contact);
    memset(a, 0, sizeof(*a));
}

static int read_account(const PGresult *res, int row, void *out)
{
    store_account *a = out;
    memset(a, 0, sizeof(*a));
    a->id = get_i64(res, row, 0);
    a->tenant = get_str(res, row, 1);
    a->directory_url = get_str(res, row, 2);
    a->key_id = get_i64(res, row, 3);
    a->account_url = get_str(res, row, 4);
    a->contact = get_str(res, row, 5);
    return 0;
}

int store_account_find(store *s, const char *tenant, const char *directory_url,
                       store_account *out, ks_err *err)
{
    const char *params[] = {tenant, directory_url};
    PGresult *res = exec_params(s, "looking up account",
                                "SELECT id, tenant, directory_url, key_id, account_url, contact"
                                " FROM accounts WHERE tenant = $1 AND directory_url = $2"
                                " AND status = 'valid'",
                                2, params, err);
    if (res == NULL)
        return -1;
    return one_row(res, out, read_account, "looking up account", err);
}

int store_account_insert(store *s, store_account *a, ks_err *err)
{
    char key_id[24];
    i64_text(key_id, sizeof(key_id), a->key_id);
    const char *params[] = {a->tenant, a->directory_url, key_id, a->account_url, a->contact};
    PGresult *res = exec_params(s, "recording account",
                                "INSERT INTO accounts (tenant, directory_url, key_id,"
                                " account_url, contact) VALUES ($1, $2, $3, $4, $5)"
                                " RETURNING id",
                                5, params, err);
    if (res == NULL)
        return -1;
    a->id = get_i64(res, 0, 0);
    PQclear(res);
    return 0;
}

int store_account_set_url(store *s, int64_t id, const char *account_url, const char *contact,
                          ks_err *err)
{
    char idbuf[24];
    i64_text(idbuf, sizeof(idbuf), id);
    const char *params[] = {idbuf, account_url, contact};
    return exec_command(s, "updating account",
                        "UPDATE accounts SET account_url = $2, contact = $3 WHERE id = $1",
                        3, params, err);
}

int store_account_deactivated(store *s, int64_t id, int64_t key_id, ks_err *err)
{
    char idbuf[24], keybuf[24];
    i64_text(idbuf, sizeof(idbuf), id);
    i64_text(keybuf, sizeof(keybuf), key_id);
    const char *account[] = {idbuf}, *key[] = {keybuf};
    if (store_begin(s, err) < 0)
        return -1;
    if (exec_command(s, "recording the account's deactivation",
                     "UPDATE accounts SET status = 'deactivated' WHERE id = $1"
                     " AND status = 'valid'",
                     1, account, err) < 0 ||
        exec_command(s, "retiring the account key",
                     "UPDATE keys SET role = 'retired', state = 'destroying', retired_at = now()"
                     " WHERE id = $1 AND purpose = 'account' AND state = 'live'",
                     1, key, err) < 0 ||
        store_commit(s, err) < 0) {
        store_rollback(s);
        return -1;
    }
    return 0;
}

/* One statement of a transaction that must change exactly one row. */
static int update_one(store *s, const char *what, const char *sql, int n,
                      const char *const *params, ks_err *err)
{
    PGresult *res = exec_params(s, what, sql, n, params, err);
    if (res == NULL)
        return -1;
    int one = strcmp(PQcmdTuples(res), "1") == 0;
    PQclear(res);
    return one ? 0 : ks_fail(err, "database: %s: the row changed under us (another worker?)",
                             what);
}

int store_account_switch_key(store *s, int64_t account_id, int64_t old_key, int64_t new_key,
                             ks_err *err)
{
    char acct[24], old_id[24], new_id[24];
    i64_text(acct, sizeof(acct), account_id);
    i64_text(old_id, sizeof(old_id), old_key);
    i64_text(new_id, sizeof(new_id), new_key);
    const char *params[] = {acct, old_id, new_id};
    if (store_begin(s, err) < 0)
        return -1;
    if (update_one(s, "pointing the account at its new key",
                   "UPDATE accounts SET key_id = $3 WHERE id = $1 AND key_id = $2", 3, params,
                   err) < 0 ||
        update_one(s, "retiring the old account key",
                   "UPDATE keys SET role = 'retired', state = 'destroying', retired_at = now()"
                   " WHERE id = $1 AND role = 'primary' AND state = 'live'",
                   1, &params[1], err) < 0 ||
        update_one(s, "making the new account key primary",
                   "UPDATE keys SET role = 'primary' WHERE id = $1 AND role = 'incoming'"
                   " AND state = 'live'",
                   1, &params[2], err) < 0 ||
        store_commit(s, err) < 0) {
        store_rollback(s);
        return -1;
    }
    return 0;
}

int store_key_request_rollover(store *s, const char *tenant, const char *name, int *marked,
                               ks_err *err)
{
    const char *params[] = {tenant, name};
    PGresult *res = exec_params(s, "marking keys for rollover",
                                "UPDATE keys SET rollover_requested_at = now()"
                                " WHERE tenant = $1 AND purpose = 'certificate' AND name = $2"
                                " AND role = 'primary' AND state = 'live'",
                                2, params, err);
    if (res == NULL)
        return -1;
    *marked = atoi(PQcmdTuples(res));
    PQclear(res);
    return 0;
}

int store_cert_revoked(store *s, int64_t id, int reason, ks_err *err)
{
    char idbuf[24], reasonbuf[16];
    i64_text(idbuf, sizeof(idbuf), id);
    snprintf(reasonbuf, sizeof(reasonbuf), "%d", reason);
    const char *params[] = {idbuf, reason >= 0 ? reasonbuf : NULL};
    return exec_command(s, "recording the revocation",
                        "UPDATE certificates SET revoked_at = now(), revocation_reason"
                        " = $2, is_current = false WHERE id = $1",
                        2, params, err);
}

int store_cert_set_ari(store *s, int64_t id, const store_ari *ari, ks_err *err)
{
    char idbuf[24], start[24], end[24], at[24], next[24];
    i64_text(idbuf, sizeof(idbuf), id);
    i64_text(start, sizeof(start), (int64_t)ari->window_start);
    i64_text(end, sizeof(end), (int64_t)ari->window_end);
    i64_text(at, sizeof(at), (int64_t)ari->renew_at);
    i64_text(next, sizeof(next), (int64_t)ari->next_check);
    const char *params[] = {idbuf, ari->window_end ? start : NULL, ari->window_end ? end : NULL,
                            ari->renew_at ? at : NULL, next};
    return exec_command(s, "recording renewal information",
                        "UPDATE certificates SET ari_window_start = to_timestamp($2),"
                        " ari_window_end = to_timestamp($3), ari_renew_at ="
                        " to_timestamp($4), ari_next_check = to_timestamp($5)"
                        " WHERE id = $1",
                        5, params, err);
}

/* A text[] literal ({"a","b"}) with every element quoted and escaped, passed
 * as one bound parameter. */
static char *text_array_new(char *const *items, size_t n)
{
    size_t cap = 3;
    for (size_t i = 0; i < n; i++)
        cap += strlen(items[i]) * 2 + 3;
    char *out = malloc(cap);
    if (out == NULL)
        return NULL;
    size_t o = 0;
    out[o++] = '{';
    for (size_t i = 0; i < n; i++) {
        if (i)
            out[o++] = ',';
        out[o++] = '"';
        for (const char *c = items[i]; *c; c++) {
            if (*c == '"' || *c == '\\')
                out[o++] = '\\';
            out[o++] = *c;
        }
        out[o++] = '"';
    }
    out[o++] = '}';
    out[o] = '\0';
    return out;
}

/* Parses the JSON text of array_to_json(text[]) into a string vector. */
static int text_array_from_json(const char *json, char ***items, size_t *n)
{
    json_object *arr = json_tokener_parse(json);
    *items = NULL;
    *n = 0;
    if (arr == NULL || !json_object_is_type(arr, json_type_array)) {
        json_object_put(arr);
        return -1;
    }
    size_t len = json_object_array_length(arr);
    *items = calloc(len ? len : 1, sizeof(**items));
    for (size_t i = 0; *items && i < len; i++) {
        const char *v = json_object_get_string(json_object_array_get_idx(arr, i));
        (*items)[i] = strdup(v ? v : "");
        *n = i + 1;
        if ((*items)[i] == NULL) {
            json_object_put(arr);
            return -1;
        }
    }
    json_object_put(arr);
    return *items ? 0 : -1;
}

int store_order_insert(store *s, store_order *o, ks_err *err)
{
    char account_id[24], key_id[24];
    i64_text(account_id, sizeof(account_id), o->account_id);
    i64_text(key_id, sizeof(key_id), o->key_id);
    char *names = text_array_new(o->names, o->n_names);
    if (names == NULL)
        return ks_fail(err, "out of memory");
    const char *params[] = {o->tenant, account_id, o->certificate_name, o->key_type,
                            o->key_id ? key_id : NULL, names, o->url, o->status};
    PGresult *res = exec_params(s, "recording order",
                                "INSERT INTO orders (tenant, account_id, certificate_name,"
                                " key_type, key_id, names, url, status)"
                                " VALUES ($1, $2, $3, $4, $5, $6::text[], $7, $8) RETURNING id",
                                8, params, err);
    free(names);
    if (res == NULL)
        return -1;
    o->id = get_i64(res, 0, 0);
    PQclear(res);
    return 0;
}

int store_order_update(store *s, int64_t id, const char *url, const char *status,
                       const char *error, ks_err *err)
{
    char idbuf[24];
    i64_text(idbuf, sizeof(idbuf), id);
    const char *params[] = {idbuf, url, status, error};
    return exec_command(s, "updating order",
                        "UPDATE orders SET url = coalesce($2, url), status = $3,"
                        " error = $4, updated_at = now() WHERE id = $1",
                        4, params, err);
}

int store_order_set_key(store *s, int64_t id, int64_t key_id, ks_err *err)
{
    char idbuf[24], keybuf[24];
    i64_text(idbuf, sizeof(idbuf), id);
    i64_text(keybuf, sizeof(keybuf), key_id);
    const char *params[] = {idbuf, keybuf};
    return exec_command(s, "updating order",
                        "UPDATE orders SET key_id = $2, updated_at = now() WHERE id = $1",
                        2, params, err);
}

void store_cert_clear(store_cert *c)
{
    free(c->tenant);
    free(c->name);
    free(c->key_type);
    free(c->common_name);
    for (size_t i = 0; i < c->n_alt_names; i++)
        free(c->alt_names[i]);
    free(c->alt_names);
    free(c->serial);
    free(c->cert_pem);
    free(c->chain_pem);
    free(c->directory_url);
    memset(c, 0, sizeof(*c));
}

static int read_cert(const PGresult *res, int row, void *out)
{
    store_cert *c = out;
    memset(c, 0, sizeof(*c));
    c->id = get_i64(res, row, 0);
    c->tenant = get_str(res, row, 1);
    c->name = get_str(res, row, 2);
    c->key_type = get_str(res, row, 3);
    c->key_id = get_i64(res, row, 4);
    c->order_id = get_i64(res, row, 5);
    c->common_name = get_str(res, row, 6);
    c->serial = get_str(res, row, 8);
    c->not_before = (time_t)get_i64(res, row, 9);
    c->not_after = (time_t)get_i64(res, row, 10);
    c->cert_pem = get_str(res, row, 11);
    c->chain_pem = get_str(res, row, 12);
    c->directory_url = get_str(res, row, 13);
    c->ari.window_start = (time_t)get_i64(res, row, 14);
    c->ari.window_end = (time_t)get_i64(res, row, 15);
    c->ari.renew_at = (time_t)get_i64(res, row, 16);
    c->ari.next_check = (time_t)get_i64(res, row, 17);
    return text_array_from_json(PQgetvalue(res, row, 7), &c->alt_names, &c->n_alt_names);
}

int store_cert_find_current(store *s, const char *tenant, const char *name, const char *key_type,
                            store_cert *out, ks_err *err)
{
    const char *params[] = {tenant, name, key_type};
    PGresult *res = exec_params(
        s, "looking up certificate",
        "SELECT c.id, c.tenant, c.name, c.key_type, c.key_id, c.order_id, c.common_name,"
        " array_to_json(c.alt_names)::text, c.serial, extract(epoch from c.not_before)::bigint,"
        " extract(epoch from c.not_after)::bigint, c.cert_pem, c.chain_pem, a.directory_url,"
        " extract(epoch from c.ari_window_start)::bigint,"
        " extract(epoch from c.ari_window_end)::bigint,"
        " extract(epoch from c.ari_renew_at)::bigint,"
        " extract(epoch from c.ari_next_check)::bigint"
        " FROM certificates c LEFT JOIN orders o ON o.id = c.order_id"
        " LEFT JOIN accounts a ON a.id = o.account_id"
        " WHERE c.tenant = $1 AND c.name = $2 AND c.key_type = $3 AND c.is_current",
        3, params, err);
    if (res == NULL)
        return -1;
    return one_row(res, out, read_cert, "looking up certificate", err);
}

static int insert_cert(store *s, store_cert *c, ks_err *err)
{
    char key_id[24], order_id[24], nb[24], na[24];
    i64_text(key_id, sizeof(key_id), c->key_id);
    i64_text(order_id, sizeof(order_id), c->order_id);
    i64_text(nb, sizeof(nb), (int64_t)c->not_before);
    i64_text(na, sizeof(na), (int64_t)c->not_after);
    char *alt = text_array_new(c->alt_names, c->n_alt_names);
    if (alt == NULL)
        return ks_fail(err, "out of memory");
    const char *params[] = {c->tenant,     c->name,   c->key_type, key_id, c->order_id ? order_id : NULL,
                            c->common_name, alt,      c->serial,   nb,     na,
                            c->cert_pem,   c->chain_pem};
    PGresult *res = exec_params(
        s, "recording certificate",
        "INSERT INTO certificates (tenant, name, key_type, key_id, order_id, common_name,"
        " alt_names, serial, not_before, not_after, cert_pem, chain_pem)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7::text[], $8, to_timestamp($9), to_timestamp($10),"
        " $11, $12) RETURNING id",
        12, params, err);
    free(alt);
    if (res == NULL)
        return -1;
    c->id = get_i64(res, 0, 0);
    PQclear(res);
    return 0;
}

int store_cert_insert_current(store *s, store_cert *c, ks_err *err)
{
    const char *params[] = {c->tenant, c->name, c->key_type};
    if (store_begin(s, err) < 0)
        return -1;
    PGresult *res = exec_params(s, "retiring previous certificate",
                                "UPDATE certificates SET is_current = false WHERE tenant = $1"
                                " AND name = $2 AND key_type = $3 AND is_current",
                                3, params, err);
    if (res == NULL || insert_cert(s, c, err) < 0 || store_commit(s, err) < 0) {
        PQclear(res);
        store_rollback(s);
        return -1;
    }
    PQclear(res);
    return 0;
}
