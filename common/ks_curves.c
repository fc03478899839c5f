#include "ks_curves.h"

#include <openssl/obj_mac.h>
#include <string.h>
#include <strings.h>

static const ks_curve curves[] = {
    {NID_X9_62_prime256v1, "secp256r1", "prime256v1", "P-256", "ES256", 32, NID_sha256},
    {NID_secp384r1, "secp384r1", "secp384r1", "P-384", "ES384", 48, NID_sha384},
    {NID_secp521r1, "secp521r1", "secp521r1", "P-521", "ES512", 66, NID_sha512},
};

#define N_CURVES (sizeof(curves) / sizeof(curves[0]))

const ks_curve *ks_curve_by_nid(int nid)
{
    for (size_t i = 0; i < N_CURVES; i++)
        if (curves[i].nid == nid)
            return &curves[i];
    return NULL;
}

const ks_curve *ks_curve_by_config_name(const char *name)
{
    for (size_t i = 0; name && i < N_CURVES; i++)
        if (strcasecmp(curves[i].config_name, name) == 0 ||
            strcasecmp(curves[i].group_name, name) == 0)
            return &curves[i];
    return NULL;
}

const ks_curve *ks_curve_by_group_name(const char *name)
{
    for (size_t i = 0; name && i < N_CURVES; i++)
        if (strcmp(curves[i].group_name, name) == 0)
            return &curves[i];
    return NULL;
}

const ks_curve *ks_curve_by_jws_alg(const char *alg)
{
    for (size_t i = 0; alg && i < N_CURVES; i++)
        if (strcmp(curves[i].jws_alg, alg) == 0)
            return &curves[i];
    return NULL;
}
