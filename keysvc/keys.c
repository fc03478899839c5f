#include "keys.h"

#include "ks_curves.h"
#include "ks_log.h"
#include "ks_testhook.h"
#include "ks_util.h"
#include "p11uri.h"
#include "signer_proto.h"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------- helpers */

int ks_key_request_init(ks_key_request *req, const char *tenant, ks_key_purpose purpose,
                        const char *name, ks_key_type type, unsigned rsa_bits, int curve_nid,
                        ks_err *err)
{
    memset(req, 0, sizeof(*req));
    req->tenant = tenant;
    req->purpose = purpose;
    req->name = name;
    req->type = type;
    if (type == KS_KEY_RSA) {
        req->spec.kind = HSM_KEY_RSA;
        req->spec.rsa_bits = rsa_bits;
        snprintf(req->params, sizeof(req->params), "rsa%u", rsa_bits);
        return 0;
    }
    if (type == KS_KEY_ED25519) {
        req->spec.kind = HSM_KEY_ED25519;
        snprintf(req->params, sizeof(req->params), "ed25519");
        return 0;
    }
    const ks_curve *curve = ks_curve_by_nid(curve_nid);
    if (curve == NULL)
        return ks_fail(err, "unsupported curve for key %s", name);
    req->spec.kind = HSM_KEY_EC;
    req->spec.ec_nid = curve_nid;
    snprintf(req->params, sizeof(req->params), "%s", curve->config_name);
    return 0;
}

int ks_keyref_from_row(const store_key *row, ks_keyref *ref, ks_err *err)
{
    memset(ref, 0, sizeof(*ref));
    if (row->ckaid_len > sizeof(ref->id) || strlen(row->token_serial) >= sizeof(ref->token_serial))
        return ks_fail(err, "key %s: CKA_ID or token serial too long", row->label);
    snprintf(ref->token_serial, sizeof(ref->token_serial), "%s", row->token_serial);
    ref->id_len = row->ckaid_len;
    memcpy(ref->id, row->ckaid, ref->id_len);
    return 0;
}

char *ks_spki_pin_new(EVP_PKEY *pub, ks_err *err)
{
    unsigned char *der = NULL;
    int len = i2d_PUBKEY(pub, &der);
    if (len <= 0) {
        ks_fail_openssl(err, "encoding the public key");
        return NULL;
    }
    unsigned char digest[32];
    unsigned int dlen = 0;
    int ok = EVP_Digest(der, (size_t)len, digest, &dlen, EVP_sha256(), NULL);
    OPENSSL_free(der);
    char *pin = malloc(4 * ((dlen + 2) / 3) + 1);
    if (!ok || pin == NULL) {
        free(pin);
        ks_fail(err, "computing the key pin");
        return NULL;
    }
    EVP_EncodeBlock((unsigned char *)pin, digest, (int)dlen);
    return pin;
}

char *ks_key_uri_new(const store_key *row, const hsm_token_info *token)
{
    p11uri_parts parts = {
        .token = row->token_label,
        .manufacturer = token ? token->manufacturer : NULL,
        .model = token ? token->model : NULL,
        .serial = row->token_serial,
        .object = row->label,
        .id = row->ckaid,
        .id_len = row->ckaid_len,
        .type = "private",
    };
    return p11uri_format_new(&parts);
}

/* ------------------------------------------------------------ recovery */

/* Claims a key for destruction: its row moves from (role, state) to
 * retired/destroying, but only if it is still there; *claimed 0 means the
 * row moved on (for a pending key: the step that made it live committed
 * after all) and the key must be kept.  A row already destroying is
 * claimed as it is. */
static int claim_for_destruction(store *db, const store_key *row, const char *role,
                                 int *claimed, ks_err *err)
{
    *claimed = 1;
    if (strcmp(row->state, "destroying") == 0)
        return 0;
    return store_key_move(db, row->id, role, row->state, "retired", "destroying", claimed, err);
}

/* Removes a claimed key from the token (if it is there) and marks its row
 * destroyed. */
static int destroy_claimed(store *db, ks_signer *signer, const store_key *row, ks_err *err)
{
    ks_keyref ref;
    int moved = 0;
    if (ks_keyref_from_row(row, &ref, err) < 0 || ks_signer_destroy(signer, &ref, err) < 0 ||
        store_key_move(db, row->id, "retired", "destroying", "retired", "destroyed", &moved,
                       err) < 0)
        return ks_failp(err, "removing key %s", row->label);
    if (!moved)
        ks_warn("key %s is off the token, but its row is no longer retired/destroying; left "
                "as it is",
                row->label);
    return 0;
}

/* Claims and destroys a key found in (role, state); 1 destroyed, 0 kept
 * because its row had moved on. */
static int destroy_key(store *db, ks_signer *signer, const store_key *row, const char *role,
                       ks_err *err)
{
    int claimed = 0;
    if (claim_for_destruction(db, row, role, &claimed, err) < 0)
        return ks_failp(err, "removing key %s", row->label);
    if (!claimed) {
        ks_info("key %s is no longer %s; kept", row->label, row->state);
        return 0;
    }
    ks_crashpoint("destroy:claimed");
    return destroy_claimed(db, signer, row, err) < 0 ? -1 : 1;
}

static int recover_state(store *db, ks_signer *signer, const char *tenant, const char *state,
                         ks_err *err)
{
    store_key *rows = NULL;
    size_t n = 0;
    int rc = store_keys_in_state(db, tenant, state, &rows, &n, err);
    for (size_t i = 0; i < n; i++) {
        if (rc == 0) {
            ks_info("%s key %s: %s", tenant, rows[i].label,
                    strcmp(state, "pending") == 0 ? "an interrupted generation, rolled back"
                                                  : "an interrupted removal, finished");
            rc = destroy_key(db, signer, &rows[i], NULL, err) < 0 ? -1 : 0;
        }
        store_key_clear(&rows[i]);
    }
    free(rows);
    return rc;
}

int ks_keys_recover(store *db, ks_signer *signer, const char *tenant, ks_err *err)
{
    if (recover_state(db, signer, tenant, "pending", err) < 0 ||
        recover_state(db, signer, tenant, "destroying", err) < 0)
        return ks_failp(err, "tenant \"%s\": recovering interrupted key operations", tenant);
    return 0;
}

/* ---------------------------------------------------------- generation */

/* A new key, crash-safely: its row is written (pending) before the key is
 * made, so the database knows every key on the token; the row stays
 * pending (role "incoming") until the caller gives it its role. */
static int generate_pending(store *db, ks_signer *signer, const ks_key_request *req,
                            store_key *row, ks_err *err)
{
    ks_keyref ref;
    EVP_PKEY *pub = NULL;
    const hsm_token_info *token = ks_signer_token(signer);
    memset(row, 0, sizeof(*row));
    if (ks_signer_new_keyref(signer, req->purpose, &ref, err) < 0)
        return -1;
    char *hex = ks_hex_new(ref.id + 1, 4);
    row->tenant = strdup(req->tenant);
    row->purpose = strdup(ks_key_purpose_name(req->purpose));
    row->name = strdup(req->name);
    row->key_type = strdup(ks_key_type_name(req->type));
    row->params = strdup(req->params);
    row->role = strdup("incoming");
    row->state = strdup("pending");
    row->token_label = strdup(token->label);
    row->token_serial = strdup(token->serial);
    /* Labels are for humans and never name a role, which would go stale. */
    row->label = hex ? ks_strdup_printf("%s:%s:%s:%s",
                                        req->purpose == KS_PURPOSE_ACCOUNT ? "acct" : "cert",
                                        req->name, row->key_type, hex)
                     : NULL;
    free(hex);
    memcpy(row->ckaid, ref.id, ref.id_len);
    row->ckaid_len = ref.id_len;
    if (!row->tenant || !row->purpose || !row->name || !row->key_type || !row->params ||
        !row->role || !row->state || !row->token_label || !row->token_serial || !row->label)
        return ks_fail(err, "out of memory");
    if (store_key_insert(db, row, err) < 0)
        return -1;
    ks_crashpoint("key:recorded");
    if (ks_signer_generate(signer, &ref, &req->spec, row->label, err) < 0)
        return ks_failp(err, "generating key %s", row->label);
    ks_crashpoint("key:generated");
    if (ks_signer_public_key(signer, &ref, &pub, err) < 0 ||
        (row->spki_sha256 = ks_spki_pin_new(pub, err)) == NULL ||
        store_key_set_pin(db, row->id, row->spki_sha256, err) < 0) {
        EVP_PKEY_free(pub);
        return -1;
    }
    EVP_PKEY_free(pub);
    ks_info("generated %s key %s on token \"%s\"", req->params, row->label, token->label);
    return 0;
}

/* A pending key that could not be finished is rolled back now, so that the
 * next run need not; only if its row is still pending (a step that failed
 * on the way back from the database may have committed). */
static void abandon(store *db, ks_signer *signer, const store_key *row)
{
    ks_err ignored;
    if (row->id != 0 && row->state != NULL && strcmp(row->state, "pending") == 0 &&
        destroy_key(db, signer, row, "incoming", &ignored) < 0)
        ks_warn("%s (it will be rolled back by the next run)", ignored.msg);
}

/* Moves a key that must be in (from_role, from_state); anything else means
 * another worker changed the keys, and is an error. */
static int move_key(store *db, const store_key *row, const char *from_role,
                    const char *from_state, const char *to_role, const char *to_state,
                    ks_err *err)
{
    int moved = 0;
    if (store_key_move(db, row->id, from_role, from_state, to_role, to_state, &moved, err) < 0)
        return -1;
    if (!moved)
        return ks_fail(err, "key %s is no longer %s/%s (another worker changed it)", row->label,
                       from_role, from_state);
    return 0;
}

/* Generates a key and makes it live in `role` at once. */
static int generate_live(store *db, ks_signer *signer, const ks_key_request *req,
                         const char *role, store_key *row, ks_err *err)
{
    if (generate_pending(db, signer, req, row, err) < 0 ||
        move_key(db, row, "incoming", "pending", role, "live", err) < 0) {
        abandon(db, signer, row);
        store_key_clear(row);
        return -1;
    }
    free(row->role);
    free(row->state);
    row->role = strdup(role);
    row->state = strdup("live");
    return 0;
}

int ks_keys_generate_incoming(store *db, ks_signer *signer, const ks_key_request *req,
                              store_key *row, ks_err *err)
{
    if (generate_pending(db, signer, req, row, err) < 0 ||
        move_key(db, row, "incoming", "pending", "incoming", "live", err) < 0) {
        abandon(db, signer, row);
        store_key_clear(row);
        return -1;
    }
    free(row->state);
    row->state = strdup("live");
    return row->state ? 0 : ks_fail(err, "out of memory");
}

int ks_keys_discard_incoming(store *db, ks_signer *signer, const store_key *row, ks_err *err)
{
    return destroy_key(db, signer, row, "incoming", err) < 0 ? -1 : 0;
}

/* An existing row must point at a key that is really on this token. */
static int check_on_token(ks_signer *signer, const store_key *row, ks_err *err)
{
    ks_keyref ref;
    if (ks_keyref_from_row(row, &ref, err) < 0)
        return -1;
    int present = ks_signer_key_exists(signer, &ref, err);
    if (present < 0)
        return ks_failp(err, "key %s", row->label);
    if (present == 0)
        return ks_fail(err,
                       "key %s (token serial %s) is recorded in the database but missing from "
                       "the token; refusing to replace it silently",
                       row->label, row->token_serial);
    return 0;
}

static int find_role(store *db, const ks_key_request *req, const char *role, store_key *out,
                     ks_err *err)
{
    return store_key_find(db, req->tenant, ks_key_purpose_name(req->purpose), req->name,
                          ks_key_type_name(req->type), role, out, err);
}

int ks_keys_ensure(store *db, ks_signer *signer, const ks_key_request *req, int with_backup,
                   store_key *primary, int *generated, ks_err *err)
{
    store_key backup = {0};
    int rc = -1;
    *generated = 0;
    memset(primary, 0, sizeof(*primary));
    int has_primary = find_role(db, req, "primary", primary, err);
    int has_backup = has_primary < 0 ? -1 : find_role(db, req, "backup", &backup, err);
    if (has_backup < 0)
        goto out;
    if (!has_primary && has_backup) {
        /* acmebot: a lone backup becomes the primary. */
        if (move_key(db, &backup, "backup", "live", "primary", "live", err) < 0)
            goto out;
        ks_info("key %s: the backup key becomes the primary", backup.label);
        *primary = backup;
        memset(&backup, 0, sizeof(backup));
        has_primary = 1;
        has_backup = 0;
    }
    if (!has_primary) {
        if (generate_live(db, signer, req, "primary", primary, err) < 0)
            goto out;
        (*generated)++;
    } else if (check_on_token(signer, primary, err) < 0) {
        goto out;
    } else if (strcmp(primary->params, req->params) != 0) {
        ks_warn("key %s is %s but the configuration asks for %s; keeping it until it is "
                "rolled over",
                primary->label, primary->params, req->params);
    }
    if (with_backup && !has_backup) {
        if (generate_live(db, signer, req, "backup", &backup, err) < 0)
            goto out;
        (*generated)++;
    }
    rc = 0;
out:
    store_key_clear(&backup);
    if (rc < 0)
        store_key_clear(primary);
    return rc;
}

/* ------------------------------------------------------------ rollover */

/* The previous key of the last rollover goes at this one, but never while
 * a current certificate still uses it (its renewal failed). */
static int check_previous_unused(store *db, const store_key *previous, ks_err *err)
{
    int in_use = 0;
    if (store_key_in_use(db, previous->id, &in_use, err) < 0)
        return -1;
    if (in_use)
        return ks_fail(err, "key %s, the previous key, still serves a current certificate; "
                            "renew that certificate (keysvc run) before the next rollover",
                       previous->label);
    return 0;
}

int ks_keys_rollover(store *db, ks_signer *signer, const ks_key_request *req, ks_err *err)
{
    store_key primary = {0}, backup = {0}, previous = {0}, incoming = {0};
    long long event = 0;
    int rc = -1;
    int has_p = find_role(db, req, "primary", &primary, err);
    int has_b = has_p < 0 ? -1 : find_role(db, req, "backup", &backup, err);
    int has_x = has_b < 0 ? -1 : find_role(db, req, "previous", &previous, err);
    if (has_x < 0)
        goto out;
    if (!has_p || !has_b) {
        ks_fail(err, "key %s (%s) has no %s key to roll over", req->name,
                ks_key_type_name(req->type), has_p ? "backup" : "primary");
        goto out;
    }
    if (has_x && check_previous_unused(db, &previous, err) < 0)
        goto out;
    /* The rollover is an audited key operation of its own, named by the key
     * that becomes the primary. */
    ks_keyref promoted;
    if (ks_keyref_from_row(&backup, &promoted, err) < 0 ||
        store_audit_begin(db, req->tenant, "rollover", ks_key_purpose_name(req->purpose),
                          promoted.token_serial, promoted.id, promoted.id_len, &event, err) < 0)
        goto out;
    if (check_on_token(signer, &backup, err) < 0 ||
        generate_pending(db, signer, req, &incoming, err) < 0)
        goto out;
    ks_crashpoint("rollover:generated");
    if (store_key_rollover(db, primary.id, backup.id, incoming.id, previous.id, err) < 0)
        goto out;
    ks_crashpoint("rollover:committed");
    rc = 0;
    if (has_x) {
        free(previous.state);
        previous.state = strdup("destroying");
        if (previous.state == NULL || destroy_claimed(db, signer, &previous, err) < 0) {
            ks_warn("the rollover is done, but removing the old previous key failed (the next "
                    "run finishes it): %s",
                    previous.state ? err->msg : "out of memory");
            goto out;
        }
    }
    ks_crashpoint("rollover:destroyed");
    ks_info("rolled over %s (%s): %s is the primary, %s the new backup, %s the previous key",
            req->name, ks_key_type_name(req->type), backup.label, incoming.label,
            primary.label);
out:
    if (rc < 0)
        abandon(db, signer, &incoming);
    if (event != 0) {
        ks_err ignored;
        if (store_audit_end(db, event, rc == 0, rc == 0 ? NULL : err->msg, &ignored) < 0)
            ks_warn("could not record the rollover's outcome: %s", ignored.msg);
    }
    store_key_clear(&primary);
    store_key_clear(&backup);
    store_key_clear(&previous);
    store_key_clear(&incoming);
    return rc;
}

int ks_keys_retire_previous(store *db, ks_signer *signer, const ks_key_request *req,
                            int *retired, ks_err *err)
{
    store_key previous = {0};
    int in_use = 0, rc = 0;
    *retired = 0;
    int found = find_role(db, req, "previous", &previous, err);
    if (found <= 0)
        return found;
    if (store_key_in_use(db, previous.id, &in_use, err) < 0) {
        rc = -1;
    } else if (!in_use) {
        rc = destroy_key(db, signer, &previous, "previous", err);
        *retired = rc == 1;
        if (rc == 1)
            ks_info("key %s (%s): the previous key %s is retired and destroyed", req->name,
                    ks_key_type_name(req->type), previous.label);
        rc = rc < 0 ? -1 : 0;
    }
    store_key_clear(&previous);
    return rc;
}

/* --------------------------------------------------------------- audit */

static int audit_begin(void *ctx, const char *tenant, const ks_keyref *ref, const char *op,
                       long long *event, ks_err *err)
{
    const char *purpose = ref->id_len > 0 && ref->id[0] == KS_KEY_PURPOSE_ACCOUNT
                              ? "account"
                              : "certificate";
    return store_audit_begin(ctx, tenant, op, purpose, ref->token_serial, ref->id, ref->id_len,
                             event, err);
}

static void audit_end(void *ctx, long long event, int ok, const char *detail)
{
    ks_err err;
    if (store_audit_end(ctx, event, ok, detail, &err) < 0)
        ks_warn("could not record the outcome of audit event %lld: %s", event, err.msg);
}

ks_audit_hooks ks_store_audit_hooks(store *db)
{
    return (ks_audit_hooks){.begin = audit_begin, .end = audit_end, .ctx = db};
}
