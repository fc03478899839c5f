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

/* Destroys a key on the token (if it is there) and marks its row destroyed. */
static int finish_destroying(store *db, ks_signer *signer, const store_key *row, ks_err *err)
{
    ks_keyref ref;
    if (ks_keyref_from_row(row, &ref, err) < 0 || ks_signer_destroy(signer, &ref, err) < 0 ||
        store_key_set(db, row->id, "retired", "destroyed", err) < 0)
        return ks_failp(err, "removing key %s", row->label);
    return 0;
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
            rc = finish_destroying(db, signer, &rows[i], err);
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
    char *hex = ks_proto_hex_new(ref.id + 1, 4);
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
 * next run need not. */
static void abandon(store *db, ks_signer *signer, const store_key *row)
{
    ks_err ignored;
    if (row->id != 0 && finish_destroying(db, signer, row, &ignored) < 0)
        ks_warn("%s (it will be rolled back by the next run)", ignored.msg);
}

/* Generates a key and makes it live in `role` at once. */
static int generate_live(store *db, ks_signer *signer, const ks_key_request *req,
                         const char *role, store_key *row, ks_err *err)
{
    if (generate_pending(db, signer, req, row, err) < 0 ||
        store_key_set(db, row->id, role, "live", err) < 0) {
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
        if (store_key_set(db, backup.id, "primary", "live", err) < 0)
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

/* Removes the keys the rollover retired (the old previous, and the old
 * primary unless it is kept). */
static int destroy_retired(store *db, ks_signer *signer, store_key *const *rows, size_t n,
                           ks_err *err)
{
    for (size_t i = 0; i < n; i++)
        if (finish_destroying(db, signer, rows[i], err) < 0)
            return -1;
    return 0;
}

int ks_keys_rollover(store *db, ks_signer *signer, const ks_key_request *req, int keep_previous,
                     ks_err *err)
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
    if (store_key_rollover(db, primary.id, backup.id, incoming.id, previous.id, keep_previous,
                           err) < 0)
        goto out;
    ks_crashpoint("rollover:committed");
    /* The old previous goes, and so does the old primary unless it is kept. */
    store_key *retired[2];
    size_t n_retired = 0;
    if (has_x)
        retired[n_retired++] = &previous;
    if (!keep_previous)
        retired[n_retired++] = &primary;
    if (destroy_retired(db, signer, retired, n_retired, err) < 0) {
        ks_failp(err, "the rollover is done, but removing the old keys failed (the next run "
                      "finishes it)");
        rc = 0;
        goto out;
    }
    ks_crashpoint("rollover:destroyed");
    ks_info("rolled over %s (%s): %s is the primary, %s the new backup", req->name,
            ks_key_type_name(req->type), backup.label, incoming.label);
    rc = 0;
out:
    if (rc < 0 && incoming.id != 0 && strcmp(incoming.state ? incoming.state : "", "pending") == 0)
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
