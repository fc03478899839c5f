/*
 * pgcluster: the private PostgreSQL cluster keysvc runs when the configuration
 * has no "database" section.
 *
 * The cluster lives in <state_dir>/postgres (data directory "data", server log
 * "postgres.log") and listens on a unix socket only (listen_addresses = ''),
 * in <state_dir>/postgres.  When keysvc runs as root the server runs as the
 * unprivileged system user `run_as` (initdb, pg_ctl and postgres all refuse
 * root); otherwise it runs as the calling user.
 *
 * Binaries are found in `pg_bindir` when given; otherwise an existing cluster
 * uses /usr/lib/postgresql/<its PG_VERSION>/bin (so installing a newer
 * PostgreSQL does not strand it), and a new one the newest
 * /usr/lib/postgresql/<N>/bin that has initdb and pg_ctl.
 *
 * Nothing here goes through a shell: helpers are started with fork/exec and
 * an argument vector.
 */
#ifndef KEYSVC_PGCLUSTER_H
#define KEYSVC_PGCLUSTER_H

#include "ks_err.h"

typedef struct pgcluster pgcluster;

typedef struct pgcluster_options {
    const char *state_dir; /* required; created (0700 when not root) if missing */
    const char *run_as;    /* system user when running as root; NULL = "postgres" */
    const char *pg_bindir; /* NULL = search */
    const char *db_name;   /* database to create and connect to; NULL = "keysvc" */
} pgcluster_options;

/* Creates the cluster if it does not exist (initdb), starts it if it is not
 * running, waits until it accepts connections, and creates the database.
 * Returns a handle, or NULL with `err` set.  A cluster this call started is
 * remembered so that pgcluster_release() stops it; one that was already
 * running is left running. */
pgcluster *pgcluster_ensure(const pgcluster_options *opts, ks_err *err);

/* libpq connection string for the cluster ("host=<socketdir> port=... user=...
 * dbname=..."); owned by the handle. */
const char *pgcluster_conninfo(const pgcluster *pc);

/* Stops the server if pgcluster_ensure() started it, then frees the handle.
 * NULL is accepted. */
void pgcluster_release(pgcluster *pc);

#endif
