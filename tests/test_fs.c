/*
 * test_fs.c: file-system helpers shared by the tests (see test_fs.h).
 */
#include "test_fs.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <unistd.h>

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return flag == FTW_DP ? rmdir(path) : unlink(path);
}

int test_remove_tree(const char *dir)
{
    if (dir == NULL || dir[0] == '\0') {
        errno = EINVAL;
        return -1;
    }
    return nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}
