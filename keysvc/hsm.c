/*
 * hsm: the module, the one call wrapper, token sessions, their recovery and
 * the handle cache.  The key operations are in hsm_keys.c.
 */
#include "hsm_internal.h"

#include "ks_log.h"
#include "ks_util.h"

#include <dlfcn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------- the wrapper */

int p11_inject(hsm *h, const char *fn)
{
    int hit = 0;
    /* Every entry for this function counts every call, so that several
     * faults for one function keep their own numbering. */
    for (size_t i = 0; i < h->n_faults; i++) {
        hsm_fault *f = &h->faults[i];
        if (strcmp(f->fn, fn) != 0 || ++f->calls != f->nth || hit)
            continue;
        hit = 1;
        h->injected_rv = f->rv;
        ks_debug("pkcs11: %s: injected %s (call %lu)", fn, hsm_rv_name(f->rv), f->calls);
    }
    return hit;
}

CK_RV p11_result(hsm *h, const char *fn, CK_RV rv)
{
    if (rv != CKR_OK)
        h->last_error = rv;
    if (ks_log_get_level() >= KS_LOG_DEBUG)
        ks_debug("pkcs11: %s -> %s", fn, hsm_rv_name(rv));
    return rv;
}

int hsm_fail_rv(ks_err *err, const char *what, CK_RV rv)
{
    return ks_fail(err, "%s: %s", what, hsm_rv_name(rv));
}

#ifdef KEYSVC_TEST_HOOKS
/* KEYSVC_TEST_P11_FAULTS="C_Sign@3=CKR_DEVICE_ERROR,C_Login@1=0xa0" */
static int parse_faults(hsm *h, const char *spec, ks_err *err)
{
    char *copy = strdup(spec);
    if (copy == NULL)
        return ks_fail(err, "out of memory");
    int rc = 0;
    char *save = NULL;
    for (char *item = strtok_r(copy, ",", &save); item && rc == 0;
         item = strtok_r(NULL, ",", &save)) {
        char *at = strchr(item, '@'), *eq = strchr(item, '=');
        hsm_fault *f = &h->faults[h->n_faults];
        if (h->n_faults == HSM_MAX_FAULTS || at == NULL || eq == NULL || eq < at ||
            (size_t)(at - item) >= sizeof(f->fn)) {
            rc = ks_fail(err, "KEYSVC_TEST_P11_FAULTS: cannot read \"%s\"", item);
            break;
        }
        memcpy(f->fn, item, (size_t)(at - item));
        f->fn[at - item] = '\0';
        char *count_end = NULL;
        f->nth = strtoul(at + 1, &count_end, 10);
        f->rv = hsm_rv_from_name(eq + 1);
        f->calls = 0;
        if (f->nth == 0 || count_end != eq || f->rv == CKR_OK)
            rc = ks_fail(err, "KEYSVC_TEST_P11_FAULTS: bad count or value in \"%s\"", item);
        else
            h->n_faults++;
    }
    free(copy);
    if (rc == 0 && h->n_faults > 0)
        ks_warn("PKCS#11 fault injection is on (KEYSVC_TEST_P11_FAULTS): for tests only");
    return rc;
}
#endif

/* ----------------------------------------------------------- the module */

hsm *hsm_open(const char *module_path, ks_err *err)
{
    hsm *h = calloc(1, sizeof(*h));
    if (h == NULL) {
        ks_fail(err, "out of memory");
        return NULL;
    }
#ifdef KEYSVC_TEST_HOOKS
    const char *faults = getenv("KEYSVC_TEST_P11_FAULTS");
    if (faults != NULL && *faults != '\0' && parse_faults(h, faults, err) < 0)
        goto fail;
#endif
    h->dl = dlopen(module_path, RTLD_NOW | RTLD_LOCAL);
    if (h->dl == NULL) {
        ks_fail(err, "cannot load PKCS#11 module %s: %s", module_path, dlerror());
        goto fail;
    }
    CK_C_GetFunctionList get_list = (CK_C_GetFunctionList)dlsym(h->dl, "C_GetFunctionList");
    if (get_list == NULL || get_list(&h->f) != CKR_OK || h->f == NULL) {
        ks_fail(err, "%s is not a PKCS#11 module (no C_GetFunctionList)", module_path);
        goto fail;
    }
    /* OS locking: SoftHSM runs without mutexes when given NULL, and crashes
     * under threads (notes: hsm.md 5.2). */
    CK_C_INITIALIZE_ARGS args = {.flags = CKF_OS_LOCKING_OK};
    CK_RV rv = P11(h, C_Initialize, &args);
    if (rv == CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        /* Inherited across fork: start clean in this process. */
        P11(h, C_Finalize, NULL);
        rv = P11(h, C_Initialize, &args);
    }
    /* SoftHSM shares our libcrypto and leaves engine errors on the queue. */
    ERR_clear_error();
    if (rv != CKR_OK) {
        hsm_fail_rv(err, "C_Initialize", rv);
        ks_failp(err, "PKCS#11 module %s", module_path);
        goto fail;
    }
    h->initialized = 1;
    return h;
fail:
    hsm_close(h);
    return NULL;
}

static void token_logout_close(hsm_token *t)
{
    if (t->logged_in)
        P11(t->h, C_Logout, t->session);
    if (t->have_session)
        P11(t->h, C_CloseSession, t->session);
    t->logged_in = 0;
    t->have_session = 0;
}

void hsm_close(hsm *h)
{
    if (h == NULL)
        return;
    while (h->tokens != NULL) {
        hsm_token *t = h->tokens;
        h->tokens = t->next;
        token_logout_close(t);
        free(t->cache);
        free(t);
    }
    if (h->initialized)
        P11(h, C_Finalize, NULL);
    if (h->dl)
        dlclose(h->dl);
    free(h);
}

/* ------------------------------------------------------------- tokens */

/* Copies a blank-padded PKCS#11 text field and drops the padding. */
static void copy_padded(char *dst, size_t dst_len, const unsigned char *src, size_t src_len)
{
    size_t n = src_len < dst_len - 1 ? src_len : dst_len - 1;
    memcpy(dst, src, n);
    while (n > 0 && (dst[n - 1] == ' ' || dst[n - 1] == '\0'))
        n--;
    dst[n] = '\0';
}

static void token_info_from(hsm_token_info *out, const CK_TOKEN_INFO *ti)
{
    copy_padded(out->label, sizeof(out->label), ti->label, sizeof(ti->label));
    copy_padded(out->manufacturer, sizeof(out->manufacturer), ti->manufacturerID,
                sizeof(ti->manufacturerID));
    copy_padded(out->model, sizeof(out->model), ti->model, sizeof(ti->model));
    copy_padded(out->serial, sizeof(out->serial), ti->serialNumber, sizeof(ti->serialNumber));
}

static int token_matches(const hsm_token_info *ti, const char *label, const char *serial)
{
    return (label == NULL || strcmp(ti->label, label) == 0) &&
           (serial == NULL || strcmp(ti->serial, serial) == 0);
}

/* The present slots, newly allocated (caller frees). */
static CK_SLOT_ID *slot_list(hsm *h, CK_ULONG *count, ks_err *err)
{
    CK_RV rv = P11(h, C_GetSlotList, CK_TRUE, NULL, count);
    if (rv != CKR_OK) {
        hsm_fail_rv(err, "C_GetSlotList", rv);
        return NULL;
    }
    CK_SLOT_ID *slots = calloc(*count ? *count : 1, sizeof(*slots));
    if (slots == NULL) {
        ks_fail(err, "out of memory");
        return NULL;
    }
    rv = P11(h, C_GetSlotList, CK_TRUE, slots, count);
    if (rv != CKR_OK) {
        free(slots);
        hsm_fail_rv(err, "C_GetSlotList", rv);
        return NULL;
    }
    return slots;
}

/* Finds the one slot whose token matches; tokens are never chosen by slot
 * number, which changes as tokens come and go. */
static int select_slot(hsm *h, const char *label, const char *serial, CK_SLOT_ID *slot,
                       hsm_token_info *info, CK_TOKEN_INFO *raw, ks_err *err)
{
    CK_ULONG count = 0;
    CK_SLOT_ID *slots = slot_list(h, &count, err);
    if (slots == NULL)
        return -1;
    int found = 0;
    char seen[512] = "";
    size_t seen_len = 0;
    for (CK_ULONG i = 0; i < count; i++) {
        CK_TOKEN_INFO ti;
        hsm_token_info pretty;
        if (P11(h, C_GetTokenInfo, slots[i], &ti) != CKR_OK || !(ti.flags & CKF_TOKEN_INITIALIZED))
            continue;
        token_info_from(&pretty, &ti);
        int n = snprintf(seen + seen_len, sizeof(seen) - seen_len, "%s\"%s\" (serial %s)",
                         seen_len ? ", " : "", pretty.label, pretty.serial);
        if (n > 0 && (size_t)n < sizeof(seen) - seen_len)
            seen_len += (size_t)n;
        if (!token_matches(&pretty, label, serial))
            continue;
        found++;
        *slot = slots[i];
        *info = pretty;
        *raw = ti;
    }
    free(slots);
    if (found == 1)
        return 0;
    if (found > 1)
        return ks_fail(err, "%d tokens match (label \"%s\"%s%s); name the one to use by its serial",
                       found, label ? label : "", serial ? ", serial " : "", serial ? serial : "");
    if (label == NULL)
        return ks_fail(err, "no token with serial %s was found (tokens present: %s)",
                       serial ? serial : "", seen_len ? seen : "none");
    return ks_fail(err, "no token labelled \"%s\"%s%s was found (tokens present: %s)", label,
                   serial ? " with serial " : "", serial ? serial : "", seen_len ? seen : "none");
}

/* Tests only: KEYSVC_TEST_TOKEN_FLAGS=final_try|locked makes the token
 * report that state (SoftHSM never does). */
static CK_FLAGS test_token_flags(void)
{
#ifdef KEYSVC_TEST_HOOKS
    const char *v = getenv("KEYSVC_TEST_TOKEN_FLAGS");
    if (v != NULL && strcmp(v, "final_try") == 0)
        return CKF_USER_PIN_FINAL_TRY;
    if (v != NULL && strcmp(v, "locked") == 0)
        return CKF_USER_PIN_LOCKED;
#endif
    return 0;
}

/* A real HSM locks the PIN after a few failures; never spend the last try. */
static int check_pin_flags(const hsm_token *t, const CK_TOKEN_INFO *raw, ks_err *err)
{
    CK_FLAGS flags = raw->flags | test_token_flags();
    if (flags & CKF_USER_PIN_LOCKED)
        return ks_fail(err, "token \"%s\": the user PIN is locked", t->info.label);
    if (flags & CKF_USER_PIN_FINAL_TRY)
        return ks_fail(err,
                       "token \"%s\": one PIN try is left; refusing to risk locking it "
                       "(check the PIN by hand)",
                       t->info.label);
    return 0;
}

static void close_session(hsm_token *t)
{
    if (t->have_session)
        P11(t->h, C_CloseSession, t->session);
    t->have_session = 0;
    t->logged_in = 0;
}

/* Remembers a login failure that another try would not mend: a wrong PIN
 * stays wrong, and each try costs one of a real HSM's few. */
static int refuse_logins(hsm_token *t, ks_err *err)
{
    t->login_refused = 1;
    snprintf(t->login_error, sizeof(t->login_error), "%s", err ? err->msg : "login failed");
    return -1;
}

/* Opens a session and logs in with the PIN from the token's source.  On
 * failure no session stays open: a session that is not logged in would
 * find no private key and let a destroy remove only the public half.
 * `first`: the token must not be logged in already (another tenant on the
 * same token would be). */
static int open_and_login(hsm_token *t, int first, ks_err *err)
{
    char pin[KS_PIN_BUF];
    size_t pin_len = 0;
    int rc = -1;
    CK_RV rv = P11(t->h, C_OpenSession, t->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
                   &t->session);
    if (rv != CKR_OK)
        return hsm_fail_rv(err, "C_OpenSession", rv);
    t->have_session = 1;
    t->h->last_login_refused = 0;
    if (t->pin_fn(t->pin_ctx, pin, sizeof(pin), &pin_len, err) < 0)
        goto out;
    rv = P11(t->h, C_Login, t->session, CKU_USER, (CK_UTF8CHAR *)pin, (CK_ULONG)pin_len);
    t->logins++;
    if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED) {
        ks_fail(err, "token \"%s\": %s (C_Login: %s)", t->info.label,
                rv == CKR_PIN_LOCKED ? "the user PIN is locked" : "wrong PIN", hsm_rv_name(rv));
        refuse_logins(t, err);
        t->h->last_login_refused = 1;
    } else if (rv == CKR_USER_ALREADY_LOGGED_IN && first) {
        ks_fail(err, "token \"%s\" is already logged in by this process: two tenants cannot "
                     "share a token",
                t->info.label);
    } else if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
        hsm_fail_rv(err, "C_Login", rv);
        ks_failp(err, "token \"%s\"", t->info.label);
    } else {
        t->logged_in = 1;
        rc = 0;
    }
out:
    OPENSSL_cleanse(pin, sizeof(pin));
    if (rc < 0)
        close_session(t);
    return rc;
}

int hsm_find_token(hsm *h, const char *label, const char *serial, hsm_token_info *out,
                   ks_err *err)
{
    CK_SLOT_ID slot;
    CK_TOKEN_INFO raw;
    return select_slot(h, label, serial, &slot, out, &raw, err);
}

int hsm_last_login_refused(const hsm *h)
{
    return h->last_login_refused;
}

int hsm_token_login_refused(const hsm_token *t)
{
    return t->login_refused;
}

void hsm_token_allow_login(hsm_token *t)
{
    t->login_refused = 0;
}

unsigned hsm_token_logins(const hsm_token *t)
{
    return t->logins;
}

hsm_token *hsm_token_login(hsm *h, const char *label, const char *serial, hsm_pin_fn pin_fn,
                           void *pin_ctx, ks_err *err)
{
    hsm_token *t = calloc(1, sizeof(*t));
    CK_TOKEN_INFO raw;
    if (t == NULL) {
        ks_fail(err, "out of memory");
        return NULL;
    }
    t->h = h;
    t->pin_fn = pin_fn;
    t->pin_ctx = pin_ctx;
    if (select_slot(h, label, serial, &t->slot, &t->info, &raw, err) < 0 ||
        check_pin_flags(t, &raw, err) < 0 || open_and_login(t, 1, err) < 0) {
        token_logout_close(t);
        free(t);
        return NULL;
    }
    t->next = h->tokens;
    h->tokens = t;
    return t;
}

const hsm_token_info *hsm_token_get_info(const hsm_token *t)
{
    return &t->info;
}

unsigned hsm_token_recoveries(const hsm_token *t)
{
    return t->recoveries;
}

void hsm_token_close_all_sessions(hsm_token *t)
{
    P11(t->h, C_CloseAllSessions, t->slot);
}

/* ----------------------------------------------------------- recovery */

static int session_lost(CK_RV rv)
{
    return rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED ||
           rv == CKR_USER_NOT_LOGGED_IN || rv == CKR_DEVICE_REMOVED ||
           rv == CKR_TOKEN_NOT_PRESENT;
}

/* A new session and a new login on the same token (found again by serial:
 * a removed and reinserted token may sit in another slot). */
static int relogin(hsm_token *t, ks_err *err)
{
    CK_TOKEN_INFO raw;
    hsm_token_info info;
    if (t->login_refused)
        return ks_fail(err, "%s (not tried again)", t->login_error);
    /* The old session may be gone already; closing it is best effort. */
    close_session(t);
    /* Handles found in a logged-out state are not to be trusted. */
    hsm_cache_clear(t);
    if (select_slot(t->h, t->info.label, t->info.serial, &t->slot, &info, &raw, err) < 0 ||
        check_pin_flags(t, &raw, err) < 0 || open_and_login(t, 0, err) < 0)
        return -1;
    t->broken = 0;
    t->recoveries++;
    return 0;
}

int hsm_with_session(hsm_token *t, int (*op)(hsm_token *, void *, ks_err *), void *arg,
                     ks_err *err)
{
    /* Never work on a session that is not logged in: it finds no private
     * key, and a destroy would remove only the public half. */
    if (t->broken || !t->logged_in) {
        ks_info("token \"%s\": replacing a session that is %s", t->info.label,
                t->broken ? "left in a failed operation" : "not logged in");
        if (relogin(t, err) < 0)
            return ks_failp(err, "token \"%s\": no usable session", t->info.label);
    }
    t->h->last_error = CKR_OK;
    int rc = op(t, arg, err);
    if (rc == 0 || !session_lost(t->h->last_error))
        return rc;
    ks_warn("token \"%s\": session lost (%s); logging in again", t->info.label,
            hsm_rv_name(t->h->last_error));
    if (relogin(t, err) < 0)
        return ks_failp(err, "token \"%s\": recovering a lost session", t->info.label);
    t->h->last_error = CKR_OK;
    rc = op(t, arg, err);
    if (rc < 0 && session_lost(t->h->last_error))
        ks_failp(err, "token \"%s\": session lost again after logging in", t->info.label);
    return rc;
}

/* ------------------------------------------------------ objects, cache */

int hsm_find_object(hsm_token *t, CK_OBJECT_CLASS cls, const unsigned char *id, size_t id_len,
                    CK_OBJECT_HANDLE *out, ks_err *err)
{
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_ID, (void *)id, (CK_ULONG)id_len},
    };
    CK_RV rv = P11(t->h, C_FindObjectsInit, t->session, tmpl, 2);
    if (rv != CKR_OK)
        return hsm_fail_rv(err, "C_FindObjectsInit", rv);
    CK_OBJECT_HANDLE found[2];
    CK_ULONG n = 0;
    rv = P11(t->h, C_FindObjects, t->session, found, 2, &n);
    P11(t->h, C_FindObjectsFinal, t->session);
    if (rv != CKR_OK)
        return hsm_fail_rv(err, "C_FindObjects", rv);
    if (n > 1)
        return ks_fail(err, "token \"%s\" holds several %s keys with the same CKA_ID",
                       t->info.label, cls == CKO_PRIVATE_KEY ? "private" : "public");
    if (n == 1)
        *out = found[0];
    return n == 1;
}

/* FNV-1a over the ID: the slot to start probing at. */
static size_t cache_slot(const hsm_token *t, const unsigned char *id, size_t id_len)
{
    unsigned long long hash = 1469598103934665603ULL;
    for (size_t i = 0; i < id_len; i++)
        hash = (hash ^ id[i]) * 1099511628211ULL;
    return (size_t)hash & (t->cache_cap - 1);
}

static hsm_cache_entry *cache_find(hsm_token *t, const unsigned char *id, size_t id_len)
{
    if (t->cache_cap == 0)
        return NULL;
    for (size_t i = cache_slot(t, id, id_len), n = 0; n < t->cache_cap;
         i = (i + 1) & (t->cache_cap - 1), n++) {
        hsm_cache_entry *e = &t->cache[i];
        if (!e->used)
            return NULL;
        if (e->id_len == id_len && memcmp(e->id, id, id_len) == 0)
            return e;
    }
    return NULL;
}

static int cache_grow(hsm_token *t)
{
    size_t old_cap = t->cache_cap;
    hsm_cache_entry *old = t->cache;
    size_t cap = old_cap ? old_cap * 2 : 64;
    hsm_cache_entry *fresh = calloc(cap, sizeof(*fresh));
    if (fresh == NULL)
        return -1;
    t->cache = fresh;
    t->cache_cap = cap;
    t->cache_used = 0;
    for (size_t i = 0; i < old_cap; i++) {
        if (!old[i].used)
            continue;
        size_t j = cache_slot(t, old[i].id, old[i].id_len);
        while (t->cache[j].used)
            j = (j + 1) & (cap - 1);
        t->cache[j] = old[i];
        t->cache_used++;
    }
    free(old);
    return 0;
}

/* Remembers a key; a full cache just means more searches, never an error. */
static void cache_put(hsm_token *t, const unsigned char *id, size_t id_len, CK_OBJECT_HANDLE priv,
                      CK_KEY_TYPE type)
{
    if (id_len > HSM_MAX_ID_LEN || ((t->cache_used + 1) * 2 > t->cache_cap && cache_grow(t) < 0))
        return;
    size_t i = cache_slot(t, id, id_len);
    while (t->cache[i].used)
        i = (i + 1) & (t->cache_cap - 1);
    hsm_cache_entry *e = &t->cache[i];
    memcpy(e->id, id, id_len);
    e->id_len = id_len;
    e->priv = priv;
    e->key_type = type;
    e->used = 1;
    t->cache_used++;
}

void hsm_cache_clear(hsm_token *t)
{
    free(t->cache);
    t->cache = NULL;
    t->cache_cap = 0;
    t->cache_used = 0;
}

void hsm_cache_drop(hsm_token *t, const unsigned char *id, size_t id_len)
{
    /* Open addressing cannot simply empty a slot: rebuild without it. */
    hsm_cache_entry *e = cache_find(t, id, id_len);
    if (e == NULL)
        return;
    e->used = 0;
    size_t cap = t->cache_cap;
    hsm_cache_entry *old = t->cache;
    t->cache = NULL;
    t->cache_cap = 0;
    t->cache_used = 0;
    for (size_t i = 0; i < cap; i++)
        if (old[i].used)
            cache_put(t, old[i].id, old[i].id_len, old[i].priv, old[i].key_type);
    free(old);
}

/* A token may give a destroyed key's handle number to a new object: a
 * cached handle is used only while it still carries the key's CKA_ID (one
 * attribute read, far cheaper than a search). */
static int cached_handle_still_is(hsm_token *t, const hsm_cache_entry *e)
{
    unsigned char id[HSM_MAX_ID_LEN];
    CK_ATTRIBUTE a = {CKA_ID, id, sizeof(id)};
    CK_RV rv = P11(t->h, C_GetAttributeValue, t->session, e->priv, &a, 1);
    return rv == CKR_OK && a.ulValueLen == e->id_len && memcmp(id, e->id, e->id_len) == 0;
}

int hsm_private_key(hsm_token *t, const unsigned char *id, size_t id_len, CK_OBJECT_HANDLE *key,
                    CK_KEY_TYPE *type, int *from_cache, ks_err *err)
{
    hsm_cache_entry *e = cache_find(t, id, id_len);
    *from_cache = e != NULL && cached_handle_still_is(t, e);
    if (*from_cache) {
        *key = e->priv;
        *type = e->key_type;
        return 0;
    }
    if (e != NULL)
        hsm_cache_drop(t, id, id_len);
    int found = hsm_find_object(t, CKO_PRIVATE_KEY, id, id_len, key, err);
    if (found == 0)
        return ks_fail(err, "token \"%s\" (serial %s) has no private key with this CKA_ID",
                       t->info.label, t->info.serial);
    if (found < 0)
        return -1;
    CK_ATTRIBUTE a = {CKA_KEY_TYPE, type, sizeof(*type)};
    CK_RV rv = P11(t->h, C_GetAttributeValue, t->session, *key, &a, 1);
    if (rv != CKR_OK)
        return hsm_fail_rv(err, "C_GetAttributeValue(CKA_KEY_TYPE)", rv);
    cache_put(t, id, id_len, *key, *type);
    return 0;
}
