/*
 * keysvc keys: what an operator or an auditor needs of every key: where it
 * is (tenant, token, CKA_ID, as an RFC 7512 URI), what it is for (purpose,
 * name, type, role), how old it is, and its pin for HPKP and TLSA.
 */
#include "keys.h"
#include "ks_log.h"
#include "lock.h"
#include "run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int selected(const ks_run_options *opts, const store_key *k)
{
    if (opts->tenant != NULL && strcmp(opts->tenant, k->tenant) != 0)
        return 0;
    if (opts->n_names == 0)
        return 1;
    for (size_t i = 0; i < opts->n_names; i++)
        if (strcmp(opts->names[i], k->name) == 0)
            return 1;
    return 0;
}

static void print_key(const store_key *k, time_t now)
{
    char *uri = ks_key_uri_new(k, NULL);
    long days = (long)((now - k->created_at) / 86400);
    printf("%s %s %s %s %s: %s, %ld day%s old\n", k->tenant, k->purpose, k->name, k->key_type,
           k->role, k->params, days, days == 1 ? "" : "s");
    printf("  pin-sha256=\"%s\"\n", k->spki_sha256 ? k->spki_sha256 : "");
    printf("  %s\n", uri ? uri : "(no URI: out of memory)");
    free(uri);
}

int ks_keys_list_main(const ks_config *cfg, const ks_run_options *opts)
{
    ks_err err = {0};
    pgcluster *cluster = NULL;
    store *db = NULL;
    store_key *rows = NULL;
    size_t n = 0;
    int rc = KS_EXIT_FAILED;
    /* The lock, so that a private cluster this starts is never stopped
     * under a run, nor one a run started under this. */
    int lock_fd = ks_state_lock(cfg->dir_state, &err);
    if (lock_fd < 0 || (db = ks_open_database(cfg, &cluster, &err)) == NULL ||
        store_keys_live(db, opts->tenant, &rows, &n, &err) < 0)
        goto out;
    time_t now = time(NULL);
    for (size_t i = 0; i < n; i++)
        if (selected(opts, &rows[i]))
            print_key(&rows[i], now);
    rc = 0;
out:
    if (err.msg[0] != '\0')
        ks_error("%s", err.msg);
    for (size_t i = 0; i < n; i++)
        store_key_clear(&rows[i]);
    free(rows);
    store_close(db);
    pgcluster_release(cluster);
    ks_state_unlock(lock_fd);
    return rc;
}
