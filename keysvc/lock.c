#include "lock.h"

#include "ks_util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

/* The holder's pid, as it wrote it, for the message; 0 if unknown or no
 * longer running (another program may hold the lock). */
static long holder_pid(int fd)
{
    char buf[32] = "";
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    long pid = strtol(buf, NULL, 10);
    return pid > 0 && kill((pid_t)pid, 0) == 0 ? pid : 0;
}

int ks_state_lock(const char *state_dir, ks_err *err)
{
    /* As root the private cluster's user must be able to pass through the
     * state directory (pgcluster makes it 0711 for the same reason). */
    if (ks_mkdirs(state_dir, geteuid() == 0 ? 0711 : 0700, err) < 0)
        return ks_failp(err, "state directory");
    char *path = ks_strdup_printf("%s/keysvc.lock", state_dir);
    if (path == NULL)
        return ks_fail(err, "out of memory");
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        ks_fail(err, "%s: %s", path, strerror(errno));
        free(path);
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int busy = errno == EWOULDBLOCK;
        long pid = busy ? holder_pid(fd) : 0;
        if (!busy)
            ks_fail(err, "%s: cannot lock: %s", path, strerror(errno));
        else if (pid > 0)
            ks_fail(err, "another keysvc run (pid %ld) holds %s; try again when it has finished",
                    pid, path);
        else
            ks_fail(err, "another process holds %s; try again when it has finished", path);
        close(fd);
        free(path);
        return -1;
    }
    free(path);
    char pid[32];
    int len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
        /* The lock holds without the pid; only the message would be poorer. */
    }
    return fd;
}

void ks_state_unlock(int fd)
{
    if (fd < 0)
        return;
    /* Still holding the lock: clear our pid so no one reads a stale one. */
    if (ftruncate(fd, 0) < 0) {
        /* Only the next holder's message could be poorer. */
    }
    close(fd);
}
