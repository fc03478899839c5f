/*
 * test_fs: file-system helpers shared by the tests.
 */
#ifndef TESTS_TEST_FS_H
#define TESTS_TEST_FS_H

/* Removes `dir` and everything below it, without following symbolic links
 * and without a shell.  0, or -1 with errno from the first failure; an
 * empty path is refused. */
int test_remove_tree(const char *dir);

#endif
