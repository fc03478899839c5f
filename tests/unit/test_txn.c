/*
 * File transactions (keysvc/txn.h) in a fresh temporary directory: new
 * files with their directories and modes; replacement with the old version
 * in archive/<name>/<stamp> (the stamp from a fixed clock, UTC), "_2" for a
 * second commit in the same second; unchanged files left alone; a failure
 * while writing the temporaries (KEYSVC_TEST_TXN_FAIL_AT) or creating a
 * directory replaces nothing, leaves no temporary and no archive; a rename
 * that fails midway (KEYSVC_TEST_TXN_RENAME_FAIL_AT) is rolled back;
 * removals; an archive on another filesystem (a copy with the old mode);
 * symbolic links never followed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ks_err.h"
#include "ks_util.h"
#include "test_fs.h"
#include "txn.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

/* 2023-11-14 22:13:20 UTC */
#define NOW ((time_t)1700000000)
#define STAMP "2023_11_14_221320"
#define KEY "example.com"
#define NONE_U ((uid_t)-1)
#define NONE_G ((gid_t)-1)

static char tmpdir[PATH_MAX];
static char shmdir[PATH_MAX];

/* ---- helpers ------------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/ks-txn-test-XXXXXX");
    shmdir[0] = '\0';
    unsetenv("KEYSVC_TEST_TXN_FAIL_AT");
    unsetenv("KEYSVC_TEST_TXN_RENAME_FAIL_AT");
    return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    unsetenv("KEYSVC_TEST_TXN_FAIL_AT");
    unsetenv("KEYSVC_TEST_TXN_RENAME_FAIL_AT");
    if (tmpdir[0] != '\0')
        test_remove_tree(tmpdir);
    if (shmdir[0] != '\0')
        test_remove_tree(shmdir);
    return 0;
}

/* tmpdir/<rel>; caller frees. */
static char *in_tmp(const char *rel)
{
    char *p = ks_strdup_printf("%s/%s", tmpdir, rel);
    assert_non_null(p);
    return p;
}

static char *archive_dir(void)
{
    return in_tmp("archive");
}

static void put_file(const char *rel, const char *content, mode_t mode)
{
    char *p = in_tmp(rel);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    assert_int_equal(fchmod(fd, mode), 0);
    assert_int_equal(close(fd), 0);
    free(p);
}

static void mk_dir(const char *rel)
{
    char *p = in_tmp(rel);
    assert_int_equal(mkdir(p, 0755), 0);
    free(p);
}

/* The file holds exactly `want` and has mode `mode`. */
static void expect_file_at(const char *path, const char *want, mode_t mode)
{
    size_t len = 0;
    ks_err err = {{0}};
    char *have = ks_read_file(path, 1 << 20, &len, &err);
    if (have == NULL)
        fail_msg("%s", err.msg);
    if (len != strlen(want) || memcmp(have, want, len) != 0)
        fail_msg("%s holds \"%s\", expected \"%s\"", path, have, want);
    free(have);
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    if ((st.st_mode & 07777) != mode)
        fail_msg("%s has mode %o, expected %o", path, (unsigned)(st.st_mode & 07777),
                 (unsigned)mode);
}

static void expect_file(const char *rel, const char *want, mode_t mode)
{
    char *p = in_tmp(rel);
    expect_file_at(p, want, mode);
    free(p);
}

static int exists(const char *rel)
{
    char *p = in_tmp(rel);
    struct stat st;
    int rc = lstat(p, &st) == 0;
    free(p);
    return rc;
}

static ino_t inode_of(const char *rel)
{
    char *p = in_tmp(rel);
    struct stat st;
    assert_int_equal(lstat(p, &st), 0);
    free(p);
    return st.st_ino;
}

static mode_t mode_of(const char *rel)
{
    char *p = in_tmp(rel);
    struct stat st;
    assert_int_equal(lstat(p, &st), 0);
    free(p);
    return st.st_mode & 07777;
}

/* Entries of tmpdir/<rel> whose name contains `part` (all entries for ""). */
static int count_entries(const char *rel, const char *part)
{
    char *p = in_tmp(rel);
    DIR *d = opendir(p);
    free(p);
    if (d == NULL)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 &&
            strstr(e->d_name, part) != NULL)
            n++;
    closedir(d);
    return n;
}

static ks_txn *new_txn(void)
{
    ks_err err = {{0}};
    char *arch = archive_dir();
    ks_txn *t = ks_txn_new(arch, KEY, NOW, &err);
    free(arch);
    if (t == NULL)
        fail_msg("%s", err.msg);
    return t;
}

static void add(ks_txn *t, const char *rel, const char *content, mode_t mode)
{
    ks_err err = {{0}};
    char *p = in_tmp(rel);
    if (ks_txn_add(t, p, content, strlen(content), mode, NONE_U, NONE_G, 0750, &err) != 0)
        fail_msg("add %s: %s", rel, err.msg);
    free(p);
}

static void commit_ok(ks_txn *t)
{
    ks_err err = {{0}};
    if (ks_txn_commit(t, &err) != 0)
        fail_msg("commit: %s", err.msg);
}

/* ---- tests --------------------------------------------------------------- */

static void test_new_files(void **state)
{
    (void)state;
    ks_txn *t = new_txn();
    add(t, "certs/sub/a.pem", "cert A\n", 0644);
    add(t, "private/a.key", "", 0640); /* empty content is content too */
    assert_int_equal(ks_txn_changes(t), 2);
    commit_ok(t);
    expect_file("certs/sub/a.pem", "cert A\n", 0644);
    expect_file("private/a.key", "", 0640);
    assert_int_equal(mode_of("certs"), 0750);
    assert_int_equal(mode_of("certs/sub"), 0750);
    assert_int_equal(ks_txn_n_written(t), 2);
    char *a = in_tmp("certs/sub/a.pem"), *k = in_tmp("private/a.key");
    assert_string_equal(ks_txn_written(t, 0), a);
    assert_string_equal(ks_txn_written(t, 1), k);
    assert_null(ks_txn_written(t, 2));
    assert_int_equal(ks_txn_n_removed(t), 0);
    free(a);
    free(k);
    /* Nothing was replaced: no archive at all. */
    assert_false(exists("archive"));
    assert_int_equal(count_entries("certs/sub", ".keysvc-"), 0);
    ks_txn_free(t);
}

static void test_replace_archives_old(void **state)
{
    (void)state;
    mk_dir("certs");
    put_file("certs/a.pem", "old A\n", 0600);
    put_file("certs/b.pem", "old B\n", 0640);
    ks_txn *t = new_txn();
    add(t, "certs/a.pem", "new A\n", 0644);
    add(t, "certs/b.pem", "new B\n", 0644);
    commit_ok(t);
    expect_file("certs/a.pem", "new A\n", 0644);
    expect_file("certs/b.pem", "new B\n", 0644);
    /* The old versions, with their old modes, under the fixed clock's stamp. */
    expect_file("archive/" KEY "/" STAMP "/a.pem", "old A\n", 0600);
    expect_file("archive/" KEY "/" STAMP "/b.pem", "old B\n", 0640);
    assert_int_equal(mode_of("archive/" KEY "/" STAMP), 0700);
    assert_int_equal(count_entries("archive/" KEY, ""), 1);
    assert_int_equal(count_entries("archive/" KEY "/" STAMP, ""), 2);
    assert_int_equal(count_entries("certs", ".keysvc-"), 0);
    ks_txn_free(t);
}

static void test_unchanged_skipped(void **state)
{
    (void)state;
    mk_dir("certs");
    put_file("certs/same.pem", "same\n", 0644);
    put_file("certs/other.pem", "old\n", 0644);
    ino_t same_ino = inode_of("certs/same.pem");
    ks_txn *t = new_txn();
    add(t, "certs/same.pem", "same\n", 0644);
    add(t, "certs/other.pem", "new\n", 0644);
    assert_int_equal(ks_txn_changes(t), 1);
    commit_ok(t);
    assert_int_equal(inode_of("certs/same.pem"), same_ino); /* not rewritten */
    expect_file("certs/other.pem", "new\n", 0644);
    assert_false(exists("archive/" KEY "/" STAMP "/same.pem")); /* not archived */
    assert_true(exists("archive/" KEY "/" STAMP "/other.pem"));
    assert_int_equal(ks_txn_n_written(t), 1);
    char *o = in_tmp("certs/other.pem");
    assert_string_equal(ks_txn_written(t, 0), o);
    free(o);
    ks_txn_free(t);

    /* Nothing to change at all: commit succeeds and touches nothing. */
    t = new_txn();
    add(t, "certs/same.pem", "same\n", 0644);
    assert_int_equal(ks_txn_changes(t), 0);
    commit_ok(t);
    assert_int_equal(ks_txn_n_written(t), 0);
    assert_int_equal(inode_of("certs/same.pem"), same_ino);
    ks_txn_free(t);
}

/* The same content with another mode, or another owner, is a change. */
static void test_mode_or_owner_change(void **state)
{
    (void)state;
    mk_dir("keys");
    put_file("keys/k.uri", "pkcs11:x\n", 0600);
    ks_txn *t = new_txn();
    add(t, "keys/k.uri", "pkcs11:x\n", 0640);
    assert_int_equal(ks_txn_changes(t), 1);
    commit_ok(t);
    expect_file("keys/k.uri", "pkcs11:x\n", 0640);
    expect_file("archive/" KEY "/" STAMP "/k.uri", "pkcs11:x\n", 0600);
    ks_txn_free(t);

    struct stat st;
    char *p = in_tmp("keys/k.uri");
    assert_int_equal(stat(p, &st), 0);
    ks_err err = {{0}};
    t = ks_txn_new(NULL, NULL, NOW, &err);
    assert_non_null(t);
    /* The owner it has: unchanged.  Another group: a change (and, run as
     * root, applied). */
    assert_int_equal(ks_txn_add(t, p, "pkcs11:x\n", 9, 0640, st.st_uid, st.st_gid, 0750, &err), 0);
    assert_int_equal(ks_txn_changes(t), 0);
    ks_txn_free(t);
    t = ks_txn_new(NULL, NULL, NOW, &err);
    gid_t other = st.st_gid == 0 ? 1 : 0;
    assert_int_equal(ks_txn_add(t, p, "pkcs11:x\n", 9, 0640, NONE_U, other, 0750, &err), 0);
    assert_int_equal(ks_txn_changes(t), 1);
    if (geteuid() == 0) {
        commit_ok(t);
        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(st.st_gid, other);
        assert_int_equal(st.st_mode & 07777, 0640);
    }
    ks_txn_free(t);
    free(p);
}

static void test_removal(void **state)
{
    (void)state;
    mk_dir("certs");
    put_file("certs/gone.pem", "bye\n", 0604);
    put_file("certs/kept.pem", "old\n", 0644);
    ks_txn *t = new_txn();
    ks_err err = {{0}};
    char *gone = in_tmp("certs/gone.pem"), *never = in_tmp("certs/never.pem");
    assert_int_equal(ks_txn_remove(t, gone, &err), 0);
    assert_int_equal(ks_txn_remove(t, never, &err), 0); /* absent: no change */
    add(t, "certs/kept.pem", "new\n", 0644);
    assert_int_equal(ks_txn_changes(t), 2);
    commit_ok(t);
    assert_false(exists("certs/gone.pem"));
    expect_file("archive/" KEY "/" STAMP "/gone.pem", "bye\n", 0604);
    expect_file("certs/kept.pem", "new\n", 0644);
    assert_int_equal(ks_txn_n_removed(t), 1);
    assert_string_equal(ks_txn_removed(t, 0), gone);
    assert_int_equal(ks_txn_n_written(t), 1);
    free(gone);
    free(never);
    ks_txn_free(t);
}

static void test_same_second_twice(void **state)
{
    (void)state;
    mk_dir("certs");
    put_file("certs/a.pem", "v1\n", 0644);
    for (int round = 2; round <= 3; round++) {
        char content[8];
        snprintf(content, sizeof(content), "v%d\n", round);
        ks_txn *t = new_txn();
        add(t, "certs/a.pem", content, 0644);
        commit_ok(t);
        ks_txn_free(t);
    }
    expect_file("certs/a.pem", "v3\n", 0644);
    expect_file("archive/" KEY "/" STAMP "/a.pem", "v1\n", 0644);
    expect_file("archive/" KEY "/" STAMP "_2/a.pem", "v2\n", 0644);
    assert_int_equal(mode_of("archive/" KEY "/" STAMP "_2"), 0700);
    assert_int_equal(count_entries("archive/" KEY, ""), 2);
}

/* Writing the 3rd of 4 temporaries fails (as on a full disk): every old
 * file is byte-identical (the same inode, even), no temporary is left, the
 * archive is empty, and the message names the 3rd file. */
static void test_fault_injection_replaces_nothing(void **state)
{
    (void)state;
#ifndef KEYSVC_TEST_HOOKS
    skip();
#endif
    static const char *const rel[4] = {"certs/1.pem", "certs/2.pem", "private/3.key",
                                       "private/4.key"};
    static const char *const old[4] = {"old one\n", "old two\n", "old three\n", "old four\n"};
    mk_dir("certs");
    mk_dir("private");
    ino_t ino[4];
    for (int i = 0; i < 4; i++) {
        put_file(rel[i], old[i], 0640);
        ino[i] = inode_of(rel[i]);
    }
    ks_txn *t = new_txn();
    for (int i = 0; i < 4; i++)
        add(t, rel[i], "a new and longer content that is half written\n", 0644);
    assert_int_equal(setenv("KEYSVC_TEST_TXN_FAIL_AT", "3", 1), 0);
    ks_err err = {{0}};
    assert_int_equal(ks_txn_commit(t, &err), -1);
    unsetenv("KEYSVC_TEST_TXN_FAIL_AT");
    char *third = in_tmp(rel[2]);
    if (strstr(err.msg, third) == NULL || strstr(err.msg, strerror(ENOSPC)) == NULL)
        fail_msg("message \"%s\" does not name %s and ENOSPC", err.msg, third);
    free(third);
    for (int i = 0; i < 4; i++) {
        expect_file(rel[i], old[i], 0640);
        assert_int_equal(inode_of(rel[i]), ino[i]);
    }
    assert_int_equal(count_entries("certs", ".keysvc-"), 0);
    assert_int_equal(count_entries("private", ".keysvc-"), 0);
    assert_int_equal(count_entries("certs", ""), 2);
    assert_int_equal(count_entries("private", ""), 2);
    assert_int_equal(count_entries("archive/" KEY, ""), 0);
    assert_int_equal(ks_txn_n_written(t), 0);
    ks_txn_free(t);
}

/* Real errors name the path and the reason.  A parent that is a file:
 * seen when the file is added, or, when it appears later, by the commit,
 * which then replaces nothing. */
static void test_real_error_names_path(void **state)
{
    (void)state;
    mk_dir("certs");
    put_file("certs/a.pem", "old A\n", 0644);
    put_file("notadir", "x", 0644);
    ks_txn *t = new_txn();
    ks_err err = {{0}};
    char *b = in_tmp("notadir/b.pem");
    assert_int_equal(ks_txn_add(t, b, "B", 1, 0644, NONE_U, NONE_G, 0755, &err), -1);
    if (strstr(err.msg, b) == NULL || strstr(err.msg, strerror(ENOTDIR)) == NULL)
        fail_msg("message \"%s\" does not name %s and ENOTDIR", err.msg, b);
    free(b);

    add(t, "certs/a.pem", "new A\n", 0644);
    add(t, "later/c.pem", "new C\n", 0644);
    put_file("later", "in the way", 0644);
    assert_int_equal(ks_txn_commit(t, &err), -1);
    char *c = in_tmp("later/c.pem");
    if (strstr(err.msg, c) == NULL || strcasestr(err.msg, "not a directory") == NULL)
        fail_msg("message \"%s\" does not name %s and the reason", err.msg, c);
    free(c);
    expect_file("certs/a.pem", "old A\n", 0644);
    assert_int_equal(count_entries("certs", ".keysvc-"), 0);
    assert_int_equal(count_entries("archive/" KEY, ""), 0);
    ks_txn_free(t);
}

/* EACCES (not testable as root, who may write anywhere). */
static void test_permission_denied(void **state)
{
    (void)state;
    if (geteuid() == 0)
        skip();
    mk_dir("ro");
    put_file("ro/a.pem", "old\n", 0644);
    char *dir = in_tmp("ro");
    assert_int_equal(chmod(dir, 0555), 0);
    ks_txn *t = new_txn();
    add(t, "ro/a.pem", "new\n", 0644);
    ks_err err = {{0}};
    int rc = ks_txn_commit(t, &err);
    chmod(dir, 0755);
    assert_int_equal(rc, -1);
    char *a = in_tmp("ro/a.pem");
    if (strstr(err.msg, a) == NULL || strstr(err.msg, strerror(EACCES)) == NULL)
        fail_msg("message \"%s\" does not name %s and EACCES", err.msg, a);
    expect_file("ro/a.pem", "old\n", 0644);
    free(a);
    free(dir);
    ks_txn_free(t);
}

/* The 3rd of 4 renames fails (KEYSVC_TEST_TXN_RENAME_FAIL_AT): the two
 * targets already replaced get their old content and mode back (the new
 * file is removed again), the message says so, and neither temporaries nor
 * the archive remain. */
static void test_rename_failure_rolls_back(void **state)
{
    (void)state;
#ifndef KEYSVC_TEST_HOOKS
    skip();
#endif
    mk_dir("certs");
    put_file("certs/a.pem", "old A\n", 0600);
    put_file("certs/b.pem", "old B\n", 0644);
    put_file("certs/c.pem", "old C\n", 0640);
    ino_t c_ino = inode_of("certs/c.pem");
    ks_txn *t = new_txn();
    add(t, "certs/new.pem", "brand new\n", 0644);
    add(t, "certs/a.pem", "new A\n", 0644);
    add(t, "certs/b.pem", "new B\n", 0644);
    add(t, "certs/c.pem", "new C\n", 0644);
    assert_int_equal(setenv("KEYSVC_TEST_TXN_RENAME_FAIL_AT", "3", 1), 0);
    ks_err err = {{0}};
    int rc = ks_txn_commit(t, &err);
    unsetenv("KEYSVC_TEST_TXN_RENAME_FAIL_AT");
    assert_int_equal(rc, -1);
    char *b = in_tmp("certs/b.pem");
    if (strstr(err.msg, b) == NULL ||
        strstr(err.msg, "2 files already replaced were restored") == NULL)
        fail_msg("message \"%s\" does not name %s and the restore", err.msg, b);
    free(b);
    assert_false(exists("certs/new.pem"));
    expect_file("certs/a.pem", "old A\n", 0600);
    expect_file("certs/b.pem", "old B\n", 0644);
    expect_file("certs/c.pem", "old C\n", 0640);
    assert_int_equal(inode_of("certs/c.pem"), c_ino);
    assert_int_equal(count_entries("certs", ""), 3);
    assert_int_equal(count_entries("archive/" KEY, ""), 0);
    assert_int_equal(ks_txn_n_written(t), 0);
    assert_int_equal(ks_txn_mixed(t), 0);
    ks_txn_free(t);
}

/* An archive on another filesystem (tmpfs /dev/shm): a real copy, fsynced,
 * with the old mode. */
static void test_archive_other_filesystem(void **state)
{
    (void)state;
    struct stat a, b;
    if (stat("/dev/shm", &b) != 0 || stat(tmpdir, &a) != 0 || a.st_dev == b.st_dev)
        skip();
    snprintf(shmdir, sizeof(shmdir), "/dev/shm/ks-txn-test-XXXXXX");
    assert_non_null(mkdtemp(shmdir));
    mk_dir("certs");
    put_file("certs/a.pem", "old A\n", 0604);
    /* Run as root: an owner other than the copier's, which the copy keeps. */
    int root = geteuid() == 0;
    char *a_path = in_tmp("certs/a.pem");
    if (root)
        assert_int_equal(chown(a_path, 1234, 2345), 0);
    free(a_path);
    ks_err err = {{0}};
    ks_txn *t = ks_txn_new(shmdir, KEY, NOW, &err);
    assert_non_null(t);
    add(t, "certs/a.pem", "new A\n", 0644);
    commit_ok(t);
    expect_file("certs/a.pem", "new A\n", 0644);
    char *copy = ks_strdup_printf("%s/%s/%s/a.pem", shmdir, KEY, STAMP);
    expect_file_at(copy, "old A\n", 0604);
    assert_int_equal(stat(copy, &b), 0);
    assert_int_not_equal(b.st_dev, a.st_dev);
    if (root) {
        assert_int_equal(b.st_uid, 1234);
        assert_int_equal(b.st_gid, 2345);
    }
    free(copy);
    ks_txn_free(t);
}

/* A target that is a symbolic link: the link is replaced by the new file
 * (and archived as a link), the file it pointed to is untouched. */
static void test_symlink_not_followed(void **state)
{
    (void)state;
    mk_dir("certs");
    put_file("victim", "precious\n", 0644);
    char *victim = in_tmp("victim"), *link_path = in_tmp("certs/a.pem");
    assert_int_equal(symlink(victim, link_path), 0);
    ks_txn *t = new_txn();
    add(t, "certs/a.pem", "new A\n", 0644);
    assert_int_equal(ks_txn_changes(t), 1);
    commit_ok(t);
    expect_file("certs/a.pem", "new A\n", 0644);
    expect_file("victim", "precious\n", 0644);
    char target[PATH_MAX];
    char *arch = in_tmp("archive/" KEY "/" STAMP "/a.pem");
    ssize_t n = readlink(arch, target, sizeof(target) - 1);
    assert_true(n > 0);
    target[n] = '\0';
    assert_string_equal(target, victim);
    free(arch);
    free(victim);
    free(link_path);
    ks_txn_free(t);
}

/* Without an archive directory: replaced in place, no copies left over. */
static void test_no_archive(void **state)
{
    (void)state;
    mk_dir("certs");
    put_file("certs/a.pem", "old\n", 0644);
    ks_err err = {{0}};
    ks_txn *t = ks_txn_new(NULL, NULL, NOW, &err);
    assert_non_null(t);
    add(t, "certs/a.pem", "new\n", 0644);
    commit_ok(t);
    expect_file("certs/a.pem", "new\n", 0644);
    assert_int_equal(count_entries("certs", ""), 1);
    assert_false(exists("archive"));
    ks_txn_free(t);
}

static void test_refusals(void **state)
{
    (void)state;
    ks_err err = {{0}};
    char *arch = archive_dir();
    assert_null(ks_txn_new(arch, "a/b", NOW, &err));
    assert_null(ks_txn_new(arch, "..", NOW, &err));
    assert_null(ks_txn_new(arch, NULL, NOW, &err));
    free(arch);

    ks_txn *t = new_txn();
    char *p = in_tmp("a.pem");
    assert_int_equal(ks_txn_add(t, p, "x", 1, 0644, NONE_U, NONE_G, 0755, &err), 0);
    assert_int_equal(ks_txn_add(t, p, "y", 1, 0644, NONE_U, NONE_G, 0755, &err), -1);
    assert_non_null(strstr(err.msg, p));
    assert_int_equal(ks_txn_remove(t, p, &err), -1);
    char *dir = in_tmp("d/");
    assert_int_equal(ks_txn_add(t, dir, "x", 1, 0644, NONE_U, NONE_G, 0755, &err), -1);
    mk_dir("sub");
    char *sub = in_tmp("sub");
    assert_int_equal(ks_txn_add(t, sub, "x", 1, 0644, NONE_U, NONE_G, 0755, &err), -1);
    assert_non_null(strstr(err.msg, "not a regular file"));
    assert_int_equal(ks_txn_changes(t), 1);
    commit_ok(t);
    assert_int_equal(ks_txn_commit(t, &err), -1); /* once only */
    assert_int_equal(ks_txn_add(t, sub, "x", 1, 0644, NONE_U, NONE_G, 0755, &err), -1);
    free(p);
    free(dir);
    free(sub);
    ks_txn_free(t);
    ks_txn_free(NULL);
}

int main(void)
{
    /* A local time far from UTC, so that a stamp in local time shows. */
    setenv("TZ", "XST-7", 1);
    tzset();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_new_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replace_archives_old, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unchanged_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mode_or_owner_change, setup, teardown),
        cmocka_unit_test_setup_teardown(test_removal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_same_second_twice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fault_injection_replaces_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_real_error_names_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_permission_denied, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rename_failure_rolls_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_archive_other_filesystem, setup, teardown),
        cmocka_unit_test_setup_teardown(test_symlink_not_followed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_archive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
