#include "run.h"

#include "http01.h"
#include "keys.h"
#include "ks_log.h"
#include "ks_util.h"
#include "pgcluster.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_TENANT "default"

/* Everything that can be checked without touching the token, the database
 * or the CA is checked first, so that bad input changes nothing. */
static int preflight(const ks_config *cfg, ks_err *err)
{
    for (size_t i = 0; i < cfg->n_certs; i++) {
        const ks_cert_config *c = &cfg->certs[i];
        for (size_t j = 0; j < c->n_alt_names; j++) {
            const char *name = c->alt_names[j];
            const char *dir = ks_config_webroot(cfg, name);
            if (name[0] == '*')
                return ks_fail(err, "%s: %s: wildcard names need dns-01, which this keysvc "
                                    "does not implement yet", cfg->path, name);
            if (dir == NULL)
                return ks_fail(err, "%s: %s: no http_challenges directory for this name "
                                    "(dns-01 is not implemented yet)", cfg->path, name);
            if (http01_webroot_check(dir, err) < 0)
                return ks_failp(err, "%s: http_challenges[\"%s\"]", cfg->path, name);
        }
    }
    return 0;
}

static int names_equal(const store_cert *have, const ks_cert_config *want)
{
    if (have->n_alt_names != want->n_alt_names || strcmp(have->common_name, want->common_name))
        return 0;
    for (size_t i = 0; i < want->n_alt_names; i++) {
        int found = 0;
        for (size_t j = 0; j < have->n_alt_names && !found; j++)
            found = strcmp(want->alt_names[i], have->alt_names[j]) == 0;
        if (!found)
            return 0;
    }
    return 1;
}

/* Why a certificate must be issued now, or NULL when the stored one is good. */
static const char *issue_reason(ks_run *run, const ks_cert_config *cert, ks_key_type type,
                                const store_cert *have, int found, ks_err *err, int *failed)
{
    store_key primary = {0};
    *failed = 0;
    if (!found)
        return "no certificate yet";
    if (!names_equal(have, cert))
        return "names changed";
    if (have->not_after - time(NULL) < (time_t)run->cfg->renewal_days * 86400)
        return "due for renewal";
    int has_key = store_key_find(run->db, run->tenant, "certificate", cert->name,
                                 ks_key_type_name(type), "primary", &primary, err);
    int64_t key_id = primary.id;
    store_key_clear(&primary);
    if (has_key < 0) {
        *failed = 1;
        return NULL;
    }
    if (!has_key || key_id != have->key_id)
        return "key changed";
    return NULL;
}

/* Brings one certificate of one key type up to date. */
static int process(ks_run *run, const ks_cert_config *cert, ks_key_type type, ks_err *err)
{
    store_cert have = {0};
    store_key key = {0};
    int found = store_cert_find_current(run->db, run->tenant, cert->name, ks_key_type_name(type),
                                        &have, err);
    if (found < 0)
        return -1;
    int failed = 0;
    const char *reason = issue_reason(run, cert, type, &have, found, err, &failed);
    int rc = -1;
    if (failed)
        goto out;
    if (reason != NULL) {
        ks_info("%s (%s): issuing: %s", cert->name, ks_key_type_name(type), reason);
        rc = ks_issue(run, cert, type, err);
        goto out;
    }
    /* Current: the files only need to match what is stored. */
    if (store_key_get(run->db, have.key_id, &key, err) != 1)
        goto out;
    ks_keyref ref;
    ks_keyref_from_row(&key, &ref);
    int present = ks_signer_key_exists(run->signer, &ref, err);
    if (present != 1) {
        if (present == 0)
            ks_fail(err, "key %s is missing from the token", key.label);
        goto out;
    }
    rc = ks_output_write(run, cert, type, &have, &key, err);
out:
    store_key_clear(&key);
    store_cert_clear(&have);
    return rc;
}

static int process_all(ks_run *run)
{
    int failures = 0;
    for (size_t i = 0; i < run->cfg->n_certs; i++) {
        const ks_cert_config *cert = &run->cfg->certs[i];
        for (size_t t = 0; t < cert->n_key_types; t++) {
            ks_err err = {0};
            if (process(run, cert, cert->key_types[t], &err) < 0) {
                ks_error("%s", err.msg);
                failures++;
            }
            if (run->ca_unavailable) {
                ks_error("stopping: the ACME server or account is unavailable");
                return failures;
            }
        }
    }
    return failures;
}

static store *open_database(const ks_config *cfg, pgcluster **cluster, ks_err *err)
{
    const char *conninfo = cfg->database_url;
    *cluster = NULL;
    if (conninfo == NULL) {
        pgcluster_options opts = {.state_dir = cfg->dir_state, .run_as = cfg->database_run_as};
        *cluster = pgcluster_ensure(&opts, err);
        if (*cluster == NULL)
            return NULL;
        conninfo = pgcluster_conninfo(*cluster);
    }
    store *db = store_connect(conninfo, err);
    if (db != NULL && store_migrate(db, err) < 0) {
        store_close(db);
        db = NULL;
    }
    return db;
}

int ks_run_main(const ks_config *cfg, const ks_run_options *opts)
{
    ks_err err = {0};
    ks_run run = {.cfg = cfg, .opts = opts, .tenant = DEFAULT_TENANT};
    pgcluster *cluster = NULL;
    int result = KS_EXIT_FAILED;
    ks_signer_config scfg = {.module = cfg->hsm_module,
                             .token_label = cfg->hsm_token,
                             .token_serial = cfg->hsm_token_serial,
                             .pin_env = cfg->hsm_pin_env,
                             .pin_file = cfg->hsm_pin_file};

    if (preflight(cfg, &err) < 0)
        goto out;
    /* The token before the database: a wrong PIN or a missing token stops
     * the run before anything is created. */
    run.signer = ks_signer_open(&scfg, &err);
    if (run.signer == NULL)
        goto out;
    run.db = open_database(cfg, &cluster, &err);
    if (run.db == NULL)
        goto out;
    int failures = process_all(&run);
    if (failures > 0) {
        err.msg[0] = '\0';
        result = KS_EXIT_FAILED;
    } else if (run.changed) {
        result = KS_EXIT_CHANGED;
    } else {
        result = KS_EXIT_NOTHING;
        if (!opts->quiet)
            printf("nothing to do: %zu certificate(s) current\n", cfg->n_certs);
    }
out:
    if (err.msg[0] != '\0')
        ks_error("%s", err.msg);
    acme_client_free(run.acme);
    free(run.account_jwk);
    store_key_clear(&run.account_key);
    store_close(run.db);
    ks_signer_close(run.signer);
    pgcluster_release(cluster);
    return result;
}
