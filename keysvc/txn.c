/*
 * A transaction over a set of output files (txn.h): temporaries first,
 * then copies of the old files, then the renames, with a rollback from the
 * copies when a rename fails.
 */
#include "txn.h"

#include "ks_log.h"
#include "ks_util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

/* Tries for a free name (archive collisions, hidden names) before giving up. */
#define NAME_ATTEMPTS 100

typedef struct txn_file {
    char *path;
    char *dir;  /* the target's directory ("." for a bare name) */
    char *base; /* the target's file name */
    unsigned char *data;
    size_t len;
    int removal;
    mode_t mode, dir_mode;
    uid_t uid;
    gid_t gid;
    int changed;     /* decided when added: the commit touches this file */
    int existed;     /* the target existed when the commit saved it */
    struct stat old; /* lstat of that old target */
    char *tmp;       /* the temporary, while it exists */
    char *saved;     /* the copy of the old target, while it is ours to manage */
    int done;        /* renamed into place (or removed) */
} txn_file;

struct ks_txn {
    char *archive_dir; /* NULL: no archive */
    char *name;
    time_t now;
    txn_file *files;
    size_t n, cap;
    char *stamp_dir; /* this commit's archive directory, once made */
    int committed;   /* commit was called */
    int ok;          /* ... and succeeded */
    int mixed;       /* ... failed, and some targets could not be restored */
};

/* ---- small helpers ------------------------------------------------------ */

/* Reads up to `cap` bytes; the count read, or -1. */
static ssize_t read_upto(int fd, unsigned char *buf, size_t cap)
{
    size_t used = 0;
    while (used < cap) {
        ssize_t n = read(fd, buf + used, cap - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        used += (size_t)n;
    }
    return (ssize_t)used;
}

static int owner_given(uid_t uid, gid_t gid)
{
    return uid != (uid_t)-1 || gid != (gid_t)-1;
}

/* A random hidden name beside f's target: "<dir>/.<base>.keysvc-<what>-<hex>". */
static char *hidden_name(const txn_file *f, const char *what)
{
    uint32_t r = 0;
    if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
        r = (uint32_t)rand();
    return ks_strdup_printf("%s/.%s.keysvc-%s-%08x", f->dir, f->base, what, (unsigned)r);
}

/* ---- ks_txn_new / add / remove ------------------------------------------ */

ks_txn *ks_txn_new(const char *archive_dir, const char *name, time_t now, ks_err *err)
{
    if (archive_dir != NULL && (name == NULL || name[0] == '\0' || strchr(name, '/') != NULL ||
                                strcmp(name, ".") == 0 || strcmp(name, "..") == 0)) {
        ks_fail(err, "archive name \"%s\" is not a single path component", name ? name : "(none)");
        return NULL;
    }
    ks_txn *t = calloc(1, sizeof(*t));
    if (t == NULL || (archive_dir != NULL && (t->archive_dir = strdup(archive_dir)) == NULL) ||
        (name != NULL && (t->name = strdup(name)) == NULL)) {
        ks_txn_free(t);
        ks_fail(err, "out of memory");
        return NULL;
    }
    t->now = now;
    return t;
}

static int find_path(const ks_txn *t, const char *path)
{
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->files[i].path, path) == 0)
            return 1;
    return 0;
}

/* Splits f->path into dir and base; -1 when it names no file. */
static int split_path(txn_file *f)
{
    const char *slash = strrchr(f->path, '/');
    const char *base = slash ? slash + 1 : f->path;
    if (base[0] == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0)
        return -1;
    if (slash == NULL)
        f->dir = strdup(".");
    else if (slash == f->path)
        f->dir = strdup("/");
    else
        f->dir = strndup(f->path, (size_t)(slash - f->path));
    f->base = strdup(base);
    return 0;
}

/* lstat of a target: 1 (exists, *st filled), 0 (absent), -1 (error, or a
 * kind of file keysvc does not replace). */
static int stat_target(const char *path, struct stat *st, ks_err *err)
{
    if (lstat(path, st) < 0) {
        if (errno == ENOENT)
            return 0;
        return ks_fail(err, "%s: %s", path, strerror(errno));
    }
    if (!S_ISREG(st->st_mode) && !S_ISLNK(st->st_mode))
        return ks_fail(err, "%s: exists and is not a regular file", path);
    return 1;
}

/* 1 when the regular file at f->path already has f's content, mode and
 * (when given) owner. */
static int already_there(const txn_file *f)
{
    int fd = open(f->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return 0;
    struct stat st;
    int same = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
               (st.st_mode & 07777) == (f->mode & 07777) &&
               (f->uid == (uid_t)-1 || st.st_uid == f->uid) &&
               (f->gid == (gid_t)-1 || st.st_gid == f->gid) && st.st_size == (off_t)f->len;
    unsigned char *buf = same ? malloc(f->len + 1) : NULL;
    if (buf != NULL) {
        ssize_t got = read_upto(fd, buf, f->len + 1);
        same = got == (ssize_t)f->len && memcmp(buf, f->data, f->len) == 0;
    } else {
        same = 0;
    }
    free(buf);
    close(fd);
    return same;
}

static void file_clear(txn_file *f)
{
    free(f->path);
    free(f->dir);
    free(f->base);
    free(f->data);
    free(f->tmp);
    free(f->saved);
}

/* Validates `path` and appends an entry for it; the new entry or NULL. */
static txn_file *append(ks_txn *t, const char *path, ks_err *err)
{
    if (t->committed) {
        ks_fail(err, "%s: the transaction was already committed", path);
        return NULL;
    }
    if (find_path(t, path)) {
        ks_fail(err, "%s: added twice to one transaction", path);
        return NULL;
    }
    if (t->n == t->cap) {
        size_t ncap = t->cap ? t->cap * 2 : 8;
        txn_file *nfiles = realloc(t->files, ncap * sizeof(*nfiles));
        if (nfiles == NULL) {
            ks_fail(err, "%s: out of memory", path);
            return NULL;
        }
        t->files = nfiles;
        t->cap = ncap;
    }
    txn_file *f = &t->files[t->n];
    memset(f, 0, sizeof(*f));
    f->uid = (uid_t)-1;
    f->gid = (gid_t)-1;
    f->path = strdup(path);
    int rc = f->path == NULL ? -1 : split_path(f);
    if (rc < 0 && f->path != NULL)
        ks_fail(err, "%s: does not name a file", path);
    else if (rc < 0 || f->dir == NULL || f->base == NULL)
        ks_fail(err, "%s: out of memory", path);
    if (rc < 0 || f->dir == NULL || f->base == NULL) {
        file_clear(f);
        return NULL;
    }
    return f;
}

int ks_txn_add(ks_txn *t, const char *path, const void *content, size_t len, mode_t mode, uid_t uid,
               gid_t gid, mode_t dir_mode, ks_err *err)
{
    txn_file *f = append(t, path, err);
    if (f == NULL)
        return -1;
    struct stat st;
    int exists = stat_target(path, &st, err);
    f->data = malloc(len + 1);
    if (exists < 0 || f->data == NULL) {
        if (exists >= 0)
            ks_fail(err, "%s: out of memory", path);
        file_clear(f);
        return -1;
    }
    if (len > 0)
        memcpy(f->data, content, len);
    f->len = len;
    f->mode = mode & 07777;
    f->uid = uid;
    f->gid = gid;
    f->dir_mode = dir_mode;
    f->changed = !(exists == 1 && S_ISREG(st.st_mode) && already_there(f));
    t->n++;
    return 0;
}

int ks_txn_remove(ks_txn *t, const char *path, ks_err *err)
{
    txn_file *f = append(t, path, err);
    if (f == NULL)
        return -1;
    struct stat st;
    int exists = stat_target(path, &st, err);
    if (exists < 0) {
        file_clear(f);
        return -1;
    }
    f->removal = 1;
    f->changed = exists == 1;
    t->n++;
    return 0;
}

int ks_txn_mixed(const ks_txn *t)
{
    return t->mixed;
}

size_t ks_txn_changes(const ks_txn *t)
{
    size_t n = 0;
    for (size_t i = 0; i < t->n; i++)
        n += t->files[i].changed != 0;
    return n;
}

/* ---- step 1: the temporaries -------------------------------------------- */

/* Test hooks: `var`=N in the environment makes the N-th event of a commit
 * fail.  KEYSVC_TEST_TXN_FAIL_AT: writing the N-th temporary (as on a full
 * disk, after part of it was written); KEYSVC_TEST_TXN_RENAME_FAIL_AT: the
 * N-th rename into place. */
static int hook_at(const char *var, unsigned index)
{
#ifdef KEYSVC_TEST_HOOKS
    const char *at = getenv(var);
    return at != NULL && strtoul(at, NULL, 10) == index;
#else
    (void)var;
    (void)index;
    return 0;
#endif
}

static int injected_failure(int fd, const txn_file *f, unsigned index)
{
    if (!hook_at("KEYSVC_TEST_TXN_FAIL_AT", index))
        return 0;
    (void)ks_write_all(fd, f->data, f->len / 2);
    errno = ENOSPC;
    return 1;
}

/* Content, owner, mode, fsync; NULL, or the step that failed (errno set). */
static const char *fill_temp(int fd, const txn_file *f, unsigned index)
{
    if (injected_failure(fd, f, index) || ks_write_all(fd, f->data, f->len) < 0)
        return "write";
    /* chown before chmod: a chown may clear mode bits. */
    if (owner_given(f->uid, f->gid) && fchown(fd, f->uid, f->gid) < 0)
        return "chown";
    if (fchmod(fd, f->mode) < 0)
        return "chmod";
    if (fsync(fd) < 0)
        return "fsync";
    return NULL;
}

/* Writes f's temporary (the `index`-th of this commit). */
static int write_temp(txn_file *f, unsigned index, ks_err *err)
{
    if (ks_mkdirs(f->dir, f->dir_mode, err) < 0)
        return ks_failp(err, "%s", f->path);
    f->tmp = ks_strdup_printf("%s/.%s.keysvc-tmp-XXXXXX", f->dir, f->base);
    if (f->tmp == NULL)
        return ks_fail(err, "%s: out of memory", f->path);
    /* O_CREAT|O_EXCL (mkostemp) never follows a link; O_NOFOLLOW says so. */
    int fd = mkostemp(f->tmp, O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        ks_fail(err, "%s: cannot create a temporary file in %s: %s", f->path, f->dir,
                strerror(errno));
        free(f->tmp);
        f->tmp = NULL;
        return -1;
    }
    const char *step = fill_temp(fd, f, index);
    int saved_errno = errno;
    if (close(fd) < 0 && step == NULL) {
        step = "close";
        saved_errno = errno;
    }
    if (step != NULL)
        return ks_fail(err, "%s: %s of the temporary file %s failed: %s", f->path, step, f->tmp,
                       strerror(saved_errno));
    return 0;
}

static int write_temps(ks_txn *t, ks_err *err)
{
    unsigned index = 0;
    for (size_t i = 0; i < t->n; i++) {
        txn_file *f = &t->files[i];
        if (f->changed && !f->removal && write_temp(f, ++index, err) < 0)
            return -1;
    }
    return 0;
}

static void drop_temps(ks_txn *t)
{
    for (size_t i = 0; i < t->n; i++) {
        txn_file *f = &t->files[i];
        if (f->tmp != NULL && unlink(f->tmp) < 0 && errno != ENOENT)
            ks_warn("cannot remove the temporary file %s: %s", f->tmp, strerror(errno));
        free(f->tmp);
        f->tmp = NULL;
    }
}

/* ---- copies of old files (the archive, and rollback) -------------------- */

/* Copies the regular file `src` to `dst` (created exclusively) with the
 * owner (best effort) and mode of `st`, fsynced.  0, or -1 with errno. */
static int copy_regular(const char *src, const struct stat *st, const char *dst)
{
    int in = open(src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (in < 0)
        return -1;
    int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out < 0) {
        int e = errno;
        close(in);
        errno = e;
        return -1;
    }
    unsigned char buf[65536];
    ssize_t n;
    int rc = 0;
    while (rc == 0 && (n = read_upto(in, buf, sizeof(buf))) != 0)
        rc = n < 0 ? -1 : ks_write_all(out, buf, (size_t)n);
    if (rc == 0 && fchown(out, st->st_uid, st->st_gid) < 0 && errno != EPERM)
        rc = -1;
    if (rc == 0 && (fchmod(out, st->st_mode & 07777) < 0 || fsync(out) < 0))
        rc = -1;
    int e = errno;
    if (close(out) < 0 && rc == 0) {
        rc = -1;
        e = errno;
    }
    close(in);
    if (rc < 0)
        unlink(dst);
    errno = e;
    return rc;
}

/* Recreates the symbolic link `src` (of lstat `st`) as `dst`. */
static int copy_symlink(const char *src, const struct stat *st, const char *dst)
{
    size_t cap = st->st_size > 0 && st->st_size < PATH_MAX ? (size_t)st->st_size + 1 : PATH_MAX;
    char *target = malloc(cap);
    if (target == NULL)
        return -1;
    ssize_t n = readlink(src, target, cap);
    int rc = -1;
    if (n >= 0 && (size_t)n < cap) {
        target[n] = '\0';
        rc = symlink(target, dst);
    } else if (n >= 0) {
        errno = ENAMETOOLONG;
    }
    int e = errno;
    free(target);
    errno = e;
    return rc;
}

/* Makes `dst` (which must not exist) a copy of `src`, an entry of lstat
 * `st`: a hard link when possible, else a real copy.  0, or -1 with errno
 * (EEXIST: the name is taken). */
static int copy_entry(const char *src, const struct stat *st, const char *dst)
{
    if (S_ISLNK(st->st_mode))
        return copy_symlink(src, st, dst);
    if (link(src, dst) == 0)
        return 0;
    if (errno == EEXIST || errno == ENOENT)
        return -1;
    /* EXDEV (another filesystem), EPERM (protected_hardlinks), EMLINK, a
     * filesystem without hard links: copy. */
    return copy_regular(src, st, dst);
}

/* Makes this commit's archive directory <archive>/<name>/<stamp>[_N]. */
static int make_stamp_dir(ks_txn *t, ks_err *err)
{
    char *parent = ks_strdup_printf("%s/%s", t->archive_dir, t->name);
    if (parent == NULL)
        return ks_fail(err, "out of memory");
    char stamp[32];
    struct tm tm;
    if (gmtime_r(&t->now, &tm) == NULL ||
        strftime(stamp, sizeof(stamp), "%Y_%m_%d_%H%M%S", &tm) == 0) {
        free(parent);
        return ks_fail(err, "the time %lld has no date", (long long)t->now);
    }
    int rc = ks_mkdirs(parent, 0700, err);
    for (unsigned n = 1; rc == 0 && t->stamp_dir == NULL && n <= 1000; n++) {
        char *dir = n == 1 ? ks_strdup_printf("%s/%s", parent, stamp)
                           : ks_strdup_printf("%s/%s_%u", parent, stamp, n);
        if (dir == NULL)
            rc = ks_fail(err, "out of memory");
        else if (mkdir(dir, 0700) == 0 && chmod(dir, 0700) == 0)
            t->stamp_dir = dir; /* chmod: exactly 0700, whatever the umask */
        else if (errno != EEXIST)
            rc = ks_fail(err, "cannot create directory %s: %s", dir, strerror(errno));
        if (t->stamp_dir != dir)
            free(dir);
    }
    if (rc == 0 && t->stamp_dir == NULL)
        rc = ks_fail(err, "%s: no free archive directory for %s", parent, stamp);
    /* The new directory's entry is durable before anything relies on it. */
    if (rc == 0)
        rc = ks_fsync_dir(parent, err);
    free(parent);
    return rc;
}

/* The attempt-th candidate name for f's saved copy: "<stamp>/<base>", then
 * "<stamp>/<base>.2" (two targets with one file name), ...; without an
 * archive, a hidden name beside the target. */
static char *saved_name(const ks_txn *t, const txn_file *f, unsigned attempt)
{
    if (t->archive_dir == NULL)
        return hidden_name(f, "old");
    if (attempt == 1)
        return ks_strdup_printf("%s/%s", t->stamp_dir, f->base);
    return ks_strdup_printf("%s/%s.%u", t->stamp_dir, f->base, attempt);
}

/* Copies f's old target to its saved place. */
static int save_old(ks_txn *t, txn_file *f, ks_err *err)
{
    if (t->archive_dir != NULL && t->stamp_dir == NULL && make_stamp_dir(t, err) < 0)
        return ks_failp(err, "%s: archiving", f->path);
    for (unsigned attempt = 1; attempt <= NAME_ATTEMPTS; attempt++) {
        char *dst = saved_name(t, f, attempt);
        if (dst == NULL)
            return ks_fail(err, "%s: out of memory", f->path);
        if (copy_entry(f->path, &f->old, dst) == 0) {
            f->saved = dst;
            return 0;
        }
        int e = errno;
        if (e != EEXIST) {
            ks_fail(err, "%s: cannot keep a copy as %s: %s", f->path, dst, strerror(e));
            free(dst);
            return -1;
        }
        free(dst);
    }
    return ks_fail(err, "%s: no free name for a copy", f->path);
}

static int save_all(ks_txn *t, ks_err *err)
{
    for (size_t i = 0; i < t->n; i++) {
        txn_file *f = &t->files[i];
        if (!f->changed)
            continue;
        int exists = stat_target(f->path, &f->old, err);
        if (exists < 0)
            return -1;
        f->existed = exists;
        if (exists && save_old(t, f, err) < 0)
            return -1;
    }
    /* The copies are on disk before any target is replaced. */
    if (t->stamp_dir != NULL && ks_fsync_dir(t->stamp_dir, err) < 0)
        return ks_failp(err, "archiving");
    return 0;
}

/* Removes the saved copies (and this commit's archive directory, then
 * empty): after a rollback that restored everything, or a failure before
 * anything was replaced; and the hidden copies after a commit. */
static void drop_saved(ks_txn *t)
{
    for (size_t i = 0; i < t->n; i++) {
        txn_file *f = &t->files[i];
        if (f->saved != NULL && unlink(f->saved) < 0 && errno != ENOENT)
            ks_warn("cannot remove %s: %s", f->saved, strerror(errno));
        free(f->saved);
        f->saved = NULL;
    }
    if (t->stamp_dir != NULL && rmdir(t->stamp_dir) < 0)
        ks_warn("cannot remove %s: %s", t->stamp_dir, strerror(errno));
    free(t->stamp_dir);
    t->stamp_dir = NULL;
}

/* ---- step 3: into place, and back --------------------------------------- */

/* Puts f's saved copy back over its target (or removes a target that did
 * not exist before).  0, or -1 with errno. */
static int restore_one(txn_file *f)
{
    if (!f->existed)
        return unlink(f->path) < 0 && errno != ENOENT ? -1 : 0;
    for (unsigned attempt = 1; attempt <= NAME_ATTEMPTS; attempt++) {
        char *tmp = hidden_name(f, "restore");
        if (tmp == NULL)
            return -1;
        int rc = copy_entry(f->saved, &f->old, tmp);
        if (rc == 0 && rename(tmp, f->path) < 0) {
            int e = errno;
            unlink(tmp);
            errno = e;
            rc = -1;
        }
        int e = errno;
        free(tmp);
        if (rc == 0 || e != EEXIST) {
            errno = e;
            return rc;
        }
    }
    errno = EEXIST;
    return -1;
}

/* Undoes the first `upto` files after a failure; err gets the outcome. */
static void rollback(ks_txn *t, size_t upto, ks_err *err)
{
    size_t restored = 0, failed = 0;
    char first[512] = "";
    for (size_t i = 0; i < upto; i++) {
        txn_file *f = &t->files[i];
        if (!f->done)
            continue;
        if (restore_one(f) == 0) {
            restored++;
            f->done = 0;
            continue;
        }
        if (failed++ == 0)
            snprintf(first, sizeof(first), "%s: %s", f->path, strerror(errno));
    }
    if (failed == 0) {
        if (restored > 0)
            ks_failp(err, "the %zu files already replaced were restored", restored);
        drop_saved(t);
        return;
    }
    t->mixed = 1;
    ks_failp(err, "rollback failed for %zu of %zu files (%s); the old versions are in %s", failed,
             failed + restored, first,
             t->stamp_dir ? t->stamp_dir : "the .keysvc-old- files beside them");
    /* The copies are now the only old versions: keep them. */
    for (size_t i = 0; i < t->n; i++) {
        free(t->files[i].saved);
        t->files[i].saved = NULL;
    }
}

static int do_rename(const char *from, const char *to, unsigned index)
{
    if (hook_at("KEYSVC_TEST_TXN_RENAME_FAIL_AT", index)) {
        errno = EIO;
        return -1;
    }
    return rename(from, to);
}

static int apply_one(txn_file *f, unsigned index, ks_err *err)
{
    if (f->removal) {
        if (f->existed && unlink(f->path) < 0 && errno != ENOENT)
            return ks_fail(err, "%s: cannot remove: %s", f->path, strerror(errno));
    } else if (do_rename(f->tmp, f->path, index) < 0) {
        return ks_fail(err, "%s: cannot rename %s into place: %s", f->path, f->tmp,
                       strerror(errno));
    } else {
        free(f->tmp);
        f->tmp = NULL;
    }
    f->done = !f->removal || f->existed;
    return 0;
}

static int apply_all(ks_txn *t, ks_err *err)
{
    unsigned renames = 0;
    for (size_t i = 0; i < t->n; i++) {
        txn_file *f = &t->files[i];
        if (f->changed && apply_one(f, f->removal ? 0 : ++renames, err) < 0) {
            rollback(t, i, err);
            return -1;
        }
    }
    return 0;
}

/* fsync of every directory a change touched, each once. */
static void sync_dirs(const ks_txn *t)
{
    for (size_t i = 0; i < t->n; i++) {
        const txn_file *f = &t->files[i];
        if (!f->done)
            continue;
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++)
            seen = t->files[j].done && strcmp(t->files[j].dir, f->dir) == 0;
        ks_err dir_err;
        if (!seen && ks_fsync_dir(f->dir, &dir_err) < 0)
            ks_warn("%s: the file is in place, but %s", f->path, dir_err.msg);
    }
}

int ks_txn_commit(ks_txn *t, ks_err *err)
{
    if (t->committed)
        return ks_fail(err, "the transaction was already committed");
    t->committed = 1;
    if (write_temps(t, err) < 0) {
        drop_temps(t);
        return -1;
    }
    if (save_all(t, err) < 0) {
        drop_temps(t);
        drop_saved(t);
        return -1;
    }
    if (apply_all(t, err) < 0) {
        drop_temps(t);
        return -1;
    }
    sync_dirs(t);
    if (t->archive_dir == NULL)
        drop_saved(t);
    t->ok = 1;
    return 0;
}

/* ---- results ------------------------------------------------------------ */

/* The i-th done file that is (or is not) a removal, or NULL. */
static const txn_file *nth_done(const ks_txn *t, int removal, size_t i, size_t *count)
{
    size_t n = 0;
    for (size_t j = 0; t->ok && j < t->n; j++) {
        const txn_file *f = &t->files[j];
        if (!f->done || f->removal != removal)
            continue;
        if (n++ == i && count == NULL)
            return f;
    }
    if (count != NULL)
        *count = n;
    return NULL;
}

size_t ks_txn_n_written(const ks_txn *t)
{
    size_t n = 0;
    nth_done(t, 0, 0, &n);
    return n;
}

const char *ks_txn_written(const ks_txn *t, size_t i)
{
    const txn_file *f = nth_done(t, 0, i, NULL);
    return f ? f->path : NULL;
}

size_t ks_txn_n_removed(const ks_txn *t)
{
    size_t n = 0;
    nth_done(t, 1, 0, &n);
    return n;
}

const char *ks_txn_removed(const ks_txn *t, size_t i)
{
    const txn_file *f = nth_done(t, 1, i, NULL);
    return f ? f->path : NULL;
}

void ks_txn_free(ks_txn *t)
{
    if (t == NULL)
        return;
    drop_temps(t);
    for (size_t i = 0; i < t->n; i++)
        file_clear(&t->files[i]);
    free(t->files);
    free(t->stamp_dir);
    free(t->archive_dir);
    free(t->name);
    free(t);
}
