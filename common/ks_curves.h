/*
 * ks_curves: the elliptic curves keysvc uses, and every name each goes by
 * (acmebot's configuration, OpenSSL, JOSE), in one table.
 */
#ifndef KS_CURVES_H
#define KS_CURVES_H

#include <stddef.h>

typedef struct ks_curve {
    int nid;                  /* OpenSSL NID */
    const char *config_name;  /* acmebot's key_curve: "secp256r1" */
    const char *group_name;   /* OpenSSL group name: "prime256v1" */
    const char *jwk_crv;      /* JWK "crv": "P-256" */
    const char *jws_alg;      /* JWS "alg": "ES256" */
    size_t coord_len;         /* bytes per coordinate (and per r, s) */
    int md_nid;               /* digest for JWS and CSR signatures */
} ks_curve;

const ks_curve *ks_curve_by_nid(int nid);
const ks_curve *ks_curve_by_config_name(const char *name); /* case-insensitive */
const ks_curve *ks_curve_by_group_name(const char *name);
const ks_curve *ks_curve_by_jws_alg(const char *alg);

#endif
