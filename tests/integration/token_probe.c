/*
 * token_probe: asks the token what it says about keys, for the integration
 * tests.  For each hex CKA_ID it prints the private key's protection
 * attributes and what the token answers when asked for the secret value:
 *
 *   token_probe MODULE TOKEN_LABEL PIN_FILE HEXID...
 *   <hexid> token=1 private=1 sensitive=1 extractable=0 always_sensitive=1
 *           never_extractable=1 secret_read=CKR_ATTRIBUTE_SENSITIVE
 *
 * Exit 0 when every key was found, 1 otherwise.
 */
#include "hsm.h"
#include "ks_util.h"
#include "pin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_hex(const char *hex, unsigned char *out, size_t cap, size_t *len)
{
    size_t n = strlen(hex);
    if (n % 2 != 0 || n / 2 > cap)
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (unsigned char)v;
    }
    *len = n / 2;
    return 0;
}

static int probe(hsm_token *t, const char *hex)
{
    unsigned char id[64];
    size_t id_len = 0;
    hsm_key_attrs a;
    ks_err err = {0};
    if (parse_hex(hex, id, sizeof(id), &id_len) < 0) {
        fprintf(stderr, "token_probe: bad id %s\n", hex);
        return -1;
    }
    if (hsm_inspect_key(t, id, id_len, &a, &err) < 0) {
        fprintf(stderr, "token_probe: %s: %s\n", hex, err.msg);
        return -1;
    }
    printf("%s token=%d private=%d sensitive=%d extractable=%d always_sensitive=%d "
           "never_extractable=%d secret_read=%s\n",
           hex, a.is_token, a.is_private, a.sensitive, a.extractable, a.always_sensitive,
           a.never_extractable, hsm_rv_name(a.secret_read_rv));
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: token_probe MODULE TOKEN_LABEL PIN_FILE HEXID...\n");
        return 2;
    }
    ks_err err = {0};
    ks_pin_source pin;
    if (ks_pin_source_init(&pin, NULL, argv[3], &err) < 0) {
        fprintf(stderr, "token_probe: %s\n", err.msg);
        return 1;
    }
    hsm *h = hsm_open(argv[1], &err);
    hsm_token *t = h ? hsm_token_login(h, argv[2], NULL, ks_pin_source_get, &pin, &err) : NULL;
    int failed = t == NULL;
    if (t == NULL)
        fprintf(stderr, "token_probe: %s\n", err.msg);
    for (int i = 4; t && i < argc; i++)
        failed |= probe(t, argv[i]) < 0;
    hsm_close(h);
    ks_pin_source_clear(&pin);
    return failed ? 1 : 0;
}
