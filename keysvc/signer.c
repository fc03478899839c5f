#include "signer.h"

#include "ks_curves.h"
#include "ks_util.h"
#include "pin.h"

#include <openssl/objects.h>
#include <stdlib.h>
#include <string.h>

struct ks_signer {
    hsm *hsm;
};

ks_signer *ks_signer_open(const ks_signer_config *cfg, ks_err *err)
{
    ks_signer *s = calloc(1, sizeof(*s));
    if (s == NULL) {
        ks_fail(err, "out of memory");
        return NULL;
    }
    size_t pin_len = 0;
    char *pin = ks_pin_read(cfg->pin_env, cfg->pin_file, &pin_len, err);
    if (pin == NULL)
        goto fail;
    s->hsm = hsm_open(cfg->module, err);
    int rc = s->hsm ? hsm_login(s->hsm, cfg->token_label, cfg->token_serial, pin, pin_len, err)
                    : -1;
    ks_secret_free(pin, pin_len + 1);
    if (rc < 0)
        goto fail;
    return s;
fail:
    ks_signer_close(s);
    return NULL;
}

void ks_signer_close(ks_signer *s)
{
    if (s == NULL)
        return;
    hsm_close(s->hsm);
    free(s);
}

const hsm_token_info *ks_signer_token(const ks_signer *s)
{
    return hsm_token(s->hsm);
}

/* A reference is only honoured on the token it was made for. */
static int check_ref(ks_signer *s, const ks_keyref *ref, ks_err *err)
{
    const hsm_token_info *t = hsm_token(s->hsm);
    if (strcmp(ref->token_serial, t->serial) != 0)
        return ks_fail(err, "key belongs to token serial %s, but this signer holds token \"%s\" "
                            "(serial %s); refused",
                       ref->token_serial, t->label, t->serial);
    return 0;
}

int ks_signer_generate(ks_signer *s, const hsm_key_spec *spec, const char *label,
                       ks_keyref *out, ks_err *err)
{
    memset(out, 0, sizeof(*out));
    if (hsm_generate_key(s->hsm, spec, label, out->id, err) < 0)
        return -1;
    out->id_len = HSM_KEY_ID_LEN;
    snprintf(out->token_serial, sizeof(out->token_serial), "%s", hsm_token(s->hsm)->serial);
    return 0;
}

int ks_signer_public_key(ks_signer *s, const ks_keyref *ref, EVP_PKEY **out, ks_err *err)
{
    if (check_ref(s, ref, err) < 0)
        return -1;
    return hsm_public_key(s->hsm, ref->id, ref->id_len, out, err);
}

static int jws_digest(const char *alg)
{
    const ks_curve *curve = ks_curve_by_jws_alg(alg);
    if (curve != NULL)
        return curve->md_nid;
    return strcmp(alg, "RS256") == 0 ? NID_sha256 : NID_undef;
}

int ks_signer_sign_jws(ks_signer *s, const ks_keyref *ref, const char *alg,
                       const unsigned char *input, size_t len, unsigned char **sig,
                       size_t *sig_len, ks_err *err)
{
    int md = jws_digest(alg);
    if (md == NID_undef)
        return ks_fail(err, "unsupported JWS algorithm %s", alg);
    if (check_ref(s, ref, err) < 0)
        return -1;
    return hsm_sign(s->hsm, ref->id, ref->id_len, md, input, len, sig, sig_len, err);
}

int ks_signer_sign_csr(ks_signer *s, const ks_keyref *ref, int md_nid, const unsigned char *tbs,
                       size_t len, unsigned char **sig, size_t *sig_len, ks_err *err)
{
    if (check_ref(s, ref, err) < 0)
        return -1;
    return hsm_sign(s->hsm, ref->id, ref->id_len, md_nid, tbs, len, sig, sig_len, err);
}

int ks_signer_key_exists(ks_signer *s, const ks_keyref *ref, ks_err *err)
{
    if (check_ref(s, ref, err) < 0)
        return -1;
    return hsm_key_exists(s->hsm, ref->id, ref->id_len, err);
}

int ks_signer_list_keys(ks_signer *s, ks_keyref **refs, size_t *n, ks_err *err)
{
    hsm_key_id *ids = NULL;
    *refs = NULL;
    if (hsm_list_private_key_ids(s->hsm, &ids, n, err) < 0)
        return -1;
    *refs = calloc(*n ? *n : 1, sizeof(**refs));
    if (*refs == NULL) {
        free(ids);
        return ks_fail(err, "out of memory");
    }
    const char *serial = hsm_token(s->hsm)->serial;
    for (size_t i = 0; i < *n; i++) {
        snprintf((*refs)[i].token_serial, sizeof((*refs)[i].token_serial), "%s", serial);
        memcpy((*refs)[i].id, ids[i].id, ids[i].len);
        (*refs)[i].id_len = ids[i].len;
    }
    free(ids);
    return 0;
}

int ks_signer_destroy(ks_signer *s, const ks_keyref *ref, ks_err *err)
{
    if (check_ref(s, ref, err) < 0)
        return -1;
    return hsm_destroy_key(s->hsm, ref->id, ref->id_len, err);
}

int ks_signer_inspect(ks_signer *s, const ks_keyref *ref, hsm_key_attrs *out, ks_err *err)
{
    if (check_ref(s, ref, err) < 0)
        return -1;
    return hsm_inspect_key(s->hsm, ref->id, ref->id_len, out, err);
}
