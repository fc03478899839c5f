#include "keys.h"

#include "ks_curves.h"
#include "ks_log.h"
#include "ks_util.h"
#include "p11uri.h"

#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ks_key_spec(ks_key_type type, unsigned rsa_bits, int curve_nid, hsm_key_spec *spec,
                char *params, size_t params_cap)
{
    memset(spec, 0, sizeof(*spec));
    if (type == KS_KEY_RSA) {
        spec->kind = HSM_KEY_RSA;
        spec->rsa_bits = rsa_bits;
        snprintf(params, params_cap, "rsa%u", rsa_bits);
        return 0;
    }
    const ks_curve *curve = ks_curve_by_nid(curve_nid);
    spec->kind = HSM_KEY_EC;
    spec->ec_nid = curve_nid;
    snprintf(params, params_cap, "%s", curve ? curve->config_name : "unknown");
    return curve ? 0 : -1;
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

/* An existing row must point at a key that is really on this token. */
static int check_existing(ks_signer *signer, const store_key *row, ks_err *err)
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

/* A key the database does not know about must not stay on the token; but if
 * the INSERT did commit and only its reply was lost, destroying the key would
 * leave a row whose key is gone.  Only a key known to be unrecorded goes. */
static void remove_unrecorded(store *db, ks_signer *signer, const ks_keyref *ref,
                              const char *label)
{
    store_key row = {0};
    ks_err err;
    int recorded = store_key_find_by_ckaid(db, ref->token_serial, ref->id, ref->id_len, &row, &err);
    store_key_clear(&row);
    if (recorded != 0) {
        ks_warn("key %s is on the token but its database row is uncertain; left in place", label);
        return;
    }
    if (ks_signer_destroy(signer, ref, &err) < 0)
        ks_warn("could not remove unrecorded key %s from the token: %s", label, err.msg);
}

static int generate_and_record(store *db, ks_signer *signer, store_key *row,
                               const hsm_key_spec *spec, ks_err *err)
{
    ks_keyref ref;
    EVP_PKEY *pub = NULL;
    if (ks_signer_generate(signer, spec, row->label, &ref, err) < 0)
        return -1;
    if (ks_signer_public_key(signer, &ref, &pub, err) < 0 ||
        (row->spki_sha256 = ks_spki_pin_new(pub, err)) == NULL)
        goto undo;
    EVP_PKEY_free(pub);
    pub = NULL;
    memcpy(row->ckaid, ref.id, ref.id_len);
    row->ckaid_len = ref.id_len;
    if (store_key_insert(db, row, err) < 0)
        goto undo;
    return 0;
undo:
    EVP_PKEY_free(pub);
    remove_unrecorded(db, signer, &ref, row->label);
    return -1;
}

int ks_keys_ensure_primary(store *db, ks_signer *signer, const char *tenant, const char *purpose,
                           const char *name, ks_key_type type, const hsm_key_spec *spec,
                           const char *params, store_key *out, int *generated, ks_err *err)
{
    const char *type_name = ks_key_type_name(type);
    *generated = 0;
    int found = store_key_find(db, tenant, purpose, name, type_name, "primary", out, err);
    if (found < 0)
        return -1;
    if (found) {
        if (strcmp(out->params, params) != 0)
            ks_warn("key %s is %s but the configuration asks for %s; keeping it until it is "
                    "rolled over",
                    out->label, out->params, params);
        return check_existing(signer, out, err);
    }
    const hsm_token_info *token = ks_signer_token(signer);
    memset(out, 0, sizeof(*out));
    out->tenant = strdup(tenant);
    out->purpose = strdup(purpose);
    out->name = strdup(name);
    out->key_type = strdup(type_name);
    out->params = strdup(params);
    out->role = strdup("primary");
    out->token_label = strdup(token->label);
    out->token_serial = strdup(token->serial);
    out->label = ks_strdup_printf("%s:%s:%s:primary", strcmp(purpose, "account") == 0 ? "acct" : "cert",
                                  name, type_name);
    if (!out->tenant || !out->purpose || !out->name || !out->key_type || !out->params ||
        !out->role || !out->token_label || !out->token_serial || !out->label) {
        store_key_clear(out);
        return ks_fail(err, "out of memory");
    }
    if (generate_and_record(db, signer, out, spec, err) < 0) {
        store_key_clear(out);
        return -1;
    }
    *generated = 1;
    ks_info("generated %s key %s on token \"%s\"", params, out->label, token->label);
    return 0;
}
