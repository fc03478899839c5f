/*
 * rollover: when a certificate key is rolled over.
 *
 *   - its certificates were revoked (keysvc run --revoke): always;
 *   - --rollover: on request;
 *   - the backup key is older than expiration_days: with auto_rollover,
 *     else a notice recommending it.
 *
 * With HPKP headers in use, browsers have pinned the backup key for
 * hpkp_days at most since it was made; promoting it sooner could lock out
 * clients that cached a header without it, so a rollover is refused while
 * the backup key is younger than hpkp_days (--force overrides; a revoked
 * key is replaced regardless).
 */
#include "install.h"
#include "keys.h"
#include "ks_clock.h"
#include "ks_log.h"
#include "run.h"

#include <stdlib.h>
#include <string.h>

#define DAY_S 86400

static int find_role(const ks_run *run, const ks_key_request *req, const char *role, store_key *row,
                     ks_err *err)
{
    return store_key_find(run->db, run->tenant, "certificate", req->name,
                          ks_key_type_name(req->type), role, row, err);
}

/* Why the key rolls over now, or NULL; *guarded says whether the HPKP
 * guard applies. */
static const char *rollover_reason(const ks_run *run, const ks_key_config *k, ks_key_type type,
                                   const store_key *primary, const store_key *backup,
                                   int has_backup, int *guarded, char *buf, size_t cap)
{
    long long age_days = has_backup ? (long long)(ks_now() - backup->created_at) / DAY_S : 0;
    *guarded = 1;
    if (primary->rollover_requested) {
        *guarded = 0;
        return "its certificates were revoked";
    }
    if (run->opts->rollover)
        return "asked for (--rollover)";
    if (!has_backup || k->expiration_days <= 0 || age_days < k->expiration_days)
        return NULL;
    snprintf(buf, cap, "the backup key is %lld days old, past expiration_days (%d)", age_days,
             k->expiration_days);
    if (k->auto_rollover)
        return buf;
    ks_warn("private key %s (%s): %s: roll it over with \"keysvc run --rollover %s\", or set "
            "auto_rollover",
            k->name, ks_key_type_name(type), buf, k->name);
    return NULL;
}

static int hpkp_guard(const ks_run *run, const ks_key_config *k, const ks_key_request *req,
                      const store_key *backup, ks_err *err)
{
    long long age_s = (long long)(ks_now() - backup->created_at);
    if (!ks_install_hpkp_in_use(run->cfg, k) || run->opts->force ||
        age_s >= (long long)k->hpkp_days * DAY_S)
        return 0;
    return ks_fail(err,
                   "private key %s (%s): rollover refused: the backup key is %lld days "
                   "old, younger than hpkp_days (%d), so clients holding the HPKP pins "
                   "sent before it existed would reject it; wait, or use --force",
                   k->name, ks_key_type_name(req->type), age_s / DAY_S, k->hpkp_days);
}

/* acmebot's private_key_rollover hook, with the key URI files. */
static void rollover_hook(const ks_run *run, const ks_key_request *req)
{
    const ks_config *cfg = run->cfg;
    ks_err ignored;
    const char *dirs[] = {cfg->dir_private_key, cfg->dir_backup_key, cfg->dir_previous_key};
    const char *tmpls[] = {cfg->fn_private_key, cfg->fn_backup_key, cfg->fn_previous_key};
    char *paths[3] = {NULL, NULL, NULL};
    for (size_t i = 0; i < 3; i++)
        if (dirs[i] != NULL && tmpls[i] != NULL)
            paths[i] =
                ks_config_output_path(cfg, dirs[i], tmpls[i], req->name, req->type, &ignored);
    ks_hook_var fields[] = {{"key_name", req->name},
                            {"key_type", ks_key_type_name(req->type)},
                            {"private_key_file", paths[0] ? paths[0] : ""},
                            {"backup_key_file", paths[1] ? paths[1] : ""},
                            {"previous_key_file", paths[2] ? paths[2] : ""},
                            {"passphrase", ""}};
    ks_install_run_hook(run, KS_HOOK_PRIVATE_KEY_ROLLOVER, req->name, fields, 6);
    for (size_t i = 0; i < 3; i++)
        free(paths[i]);
}

int ks_rollover_apply(ks_run *run, size_t key_index, const ks_key_request *req, ks_err *err)
{
    const ks_key_config *k = &run->cfg->keys[key_index];
    store_key primary = {0}, backup = {0};
    char why[160];
    int guarded = 1, rc = -1;
    int has_p = find_role(run, req, "primary", &primary, err);
    int has_b = has_p <= 0 ? 0 : find_role(run, req, "backup", &backup, err);
    if (has_p < 0 || has_b < 0)
        goto out;
    rc = 0;
    if (!has_p) /* nothing issued yet: the first issue makes both keys */
        goto out;
    const char *reason =
        rollover_reason(run, k, req->type, &primary, &backup, has_b, &guarded, why, sizeof(why));
    if (reason == NULL)
        goto out;
    rc = -1;
    if (!has_b)
        ks_fail(err, "private key %s (%s) has no backup key to roll over to", k->name,
                ks_key_type_name(req->type));
    else if ((!guarded || hpkp_guard(run, k, req, &backup, err) == 0) &&
             ks_keys_rollover(run->db, run->signer, req, err) == 0)
        rc = 0;
    if (rc < 0)
        goto out;
    run->changed = 1;
    ks_log_action("rolled over %s (%s): %s", k->name, ks_key_type_name(req->type), reason);
    rollover_hook(run, req);
    rc = 1;
out:
    store_key_clear(&primary);
    store_key_clear(&backup);
    return rc;
}
