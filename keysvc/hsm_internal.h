/*
 * Internals shared by hsm.c (module, wrapper, sessions, recovery, handle
 * cache) and hsm_keys.c (the key operations).  Only hsm*.c include this,
 * and with it pkcs11.h.
 */
#ifndef KEYSVC_HSM_INTERNAL_H
#define KEYSVC_HSM_INTERNAL_H

#include "hsm.h"

#include <p11-kit/pkcs11.h>

/* One injected failure: the nth call of `fn` returns `rv` (tests only). */
typedef struct hsm_fault {
    char fn[32];
    unsigned long nth;
    unsigned long calls;
    CK_RV rv;
} hsm_fault;

#define HSM_MAX_FAULTS 8

struct hsm {
    void *dl;
    CK_FUNCTION_LIST *f;
    int initialized;
    hsm_token *tokens; /* every logged-in token, freed by hsm_close */
    hsm_fault faults[HSM_MAX_FAULTS];
    size_t n_faults;
    CK_RV injected_rv; /* set by p11_inject for the call it fails */
    CK_RV last_error;  /* the last result other than CKR_OK, for recovery */
    int last_login_refused; /* the last failed login was a wrong or locked PIN */
};

/* What is known of one key's objects, so that signing needs no search. */
typedef struct hsm_cache_entry {
    unsigned char id[HSM_MAX_ID_LEN];
    size_t id_len;
    CK_OBJECT_HANDLE priv;
    CK_KEY_TYPE key_type;
    int used;
} hsm_cache_entry;

struct hsm_token {
    hsm *h;
    hsm_token *next;
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE session;
    int have_session;
    int logged_in;
    /* An operation failed half way (C_SignInit done, C_Sign failed): the
     * session may hold its state, so it is replaced before the next use. */
    int broken;
    /* A login failed for a reason another try would not mend (wrong or
     * locked PIN): no further login is tried, so no more PIN tries are
     * spent.  Its message is kept for every later request. */
    int login_refused;
    char login_error[KS_ERR_MAX];
    unsigned logins;
    hsm_token_info info;
    hsm_pin_fn pin_fn;
    void *pin_ctx;
    unsigned recoveries;
    hsm_cache_entry *cache; /* open addressing, capacity a power of two */
    size_t cache_cap;
    size_t cache_used;
};

/* The wrapper every C_* call goes through. */
int p11_inject(hsm *h, const char *fn);
CK_RV p11_result(hsm *h, const char *fn, CK_RV rv);
#define P11(h, fn, ...) p11_result((h), #fn, p11_inject((h), #fn) ? (h)->injected_rv : (h)->f->fn(__VA_ARGS__))

int hsm_fail_rv(ks_err *err, const char *what, CK_RV rv);

/* Runs op(t, arg, err) and, when it failed because the session was lost,
 * logs in again and runs it once more. */
int hsm_with_session(hsm_token *t, int (*op)(hsm_token *, void *, ks_err *), void *arg,
                     ks_err *err);

/* Finds the one object of `cls` with CKA_ID `id`: 1 found, 0 none, -1 error
 * (duplicates included). */
int hsm_find_object(hsm_token *t, CK_OBJECT_CLASS cls, const unsigned char *id, size_t id_len,
                    CK_OBJECT_HANDLE *out, ks_err *err);

/* The private key's handle and type, from the cache or a search.
 * *from_cache tells the caller whether a stale handle is possible. */
int hsm_private_key(hsm_token *t, const unsigned char *id, size_t id_len, CK_OBJECT_HANDLE *key,
                    CK_KEY_TYPE *type, int *from_cache, ks_err *err);
void hsm_cache_drop(hsm_token *t, const unsigned char *id, size_t id_len);
void hsm_cache_clear(hsm_token *t);

#endif
