/*
 * txn: a transaction over a set of output files.  acmebot writes all files
 * of one key's certificates together and archives what they replace; so
 * does keysvc: either every file of the set is the new one, or (when
 * anything fails before the first file is replaced) every file is the old
 * one, and a failure midway is rolled back from the archive copies.
 *
 * A commit, in order:
 *  1. creates missing parent directories, then writes each changed file to
 *     a temporary ".<basename>.keysvc-tmp-XXXXXX" in its target's directory
 *     (created with O_CREAT|O_EXCL|O_NOFOLLOW, fchown when asked, fchmod,
 *     fsync).  Any failure removes every temporary: nothing was replaced;
 *  2. copies each file about to be replaced or removed into
 *     <archive_dir>/<name>/<YYYY_MM_DD_HHMMSS>/<basename> (a hard link when
 *     on the same filesystem, else a copy with the old mode, fsynced), so
 *     that the old version is safe on disk before anything is touched.  The
 *     directory is made 0700; a second commit in the same second uses
 *     "<stamp>_2", then "_3", and so on.  Without an archive directory the
 *     copy is a hidden ".<basename>.keysvc-old-XXXXXX" beside the target,
 *     kept only until the commit is done (it is what a rollback needs);
 *  3. renames each temporary over its target (and unlinks each removed
 *     file), then fsyncs every directory touched.  If a rename fails, the
 *     targets already replaced are restored from their copies (best effort)
 *     and the error says whether that worked.
 *
 * Errors name the path and the system's reason.  Symbolic links are never
 * followed when writing; a target that is a symbolic link is replaced by
 * the new file (the link itself is archived).
 *
 * Test hooks (only with KEYSVC_TEST_HOOKS): KEYSVC_TEST_TXN_FAIL_AT=N makes
 * writing the N-th temporary of a commit fail as a full disk would (ENOSPC,
 * after part of it was written); KEYSVC_TEST_TXN_RENAME_FAIL_AT=N makes the
 * N-th rename into place fail (EIO).
 */
#ifndef KEYSVC_TXN_H
#define KEYSVC_TXN_H

#include "ks_err.h"

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

typedef struct ks_txn ks_txn;

/* A new, empty transaction (free with ks_txn_free).  `archive_dir` is
 * acmebot's directories.archive (NULL: no archive); `name` the archive
 * subdirectory (the private key name: one path component, required with an
 * archive); `now` the run's clock, for the archive directory's name (UTC).
 * Both strings are copied.  NULL with `err` set on a bad name or OOM. */
ks_txn *ks_txn_new(const char *archive_dir, const char *name, time_t now, ks_err *err);

/* Adds a file to write: `content` (len bytes, copied), `mode` (permission
 * bits), owner uid/gid ((uid_t)-1 / (gid_t)-1: leave as created), and
 * `dir_mode` for the parent directories a commit has to create.  A file
 * whose content, mode and (given) owner already match is left alone: not
 * archived, not rewritten, not counted.  -1 for a path added twice, a path
 * without a file name, or a target that exists but is neither a regular
 * file nor a symbolic link. */
int ks_txn_add(ks_txn *t, const char *path, const void *content, size_t len, mode_t mode, uid_t uid,
               gid_t gid, mode_t dir_mode, ks_err *err);

/* Adds a removal: the file, if it exists, is archived and removed at
 * commit.  -1 as for ks_txn_add. */
int ks_txn_remove(ks_txn *t, const char *path, ks_err *err);

/* After a failed commit: 1 when some targets are new and could not be put
 * back (the error says where the old versions are), 0 when nothing was
 * replaced. */
int ks_txn_mixed(const ks_txn *t);

/* The number of files a commit will change (written or removed). */
size_t ks_txn_changes(const ks_txn *t);

/* Commits (see above).  0 when every change is in place (also when there
 * was nothing to change); -1 with `err` naming the path otherwise.  A
 * transaction commits once: a second call is an error. */
int ks_txn_commit(ks_txn *t, ks_err *err);

/* After a successful commit: the paths written (new or replaced files, in
 * the order added), for reporting ("wrote X").  Removals are not in this
 * list but in ks_txn_removed.  The strings belong to the transaction. */
size_t ks_txn_n_written(const ks_txn *t);
const char *ks_txn_written(const ks_txn *t, size_t i);

/* After a successful commit: the paths removed ("removed X"). */
size_t ks_txn_n_removed(const ks_txn *t);
const char *ks_txn_removed(const ks_txn *t, size_t i);

/* Removes temporaries left by a failed commit, frees.  NULL is fine. */
void ks_txn_free(ks_txn *t);

#endif
