#include "http01.h"

#include "b64.h"
#include "ks_util.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int http01_webroot_check(const char *dir, ks_err *err)
{
    struct stat st;
    if (stat(dir, &st) < 0)
        return ks_fail(err, "http-01 webroot %s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return ks_fail(err, "http-01 webroot %s: not a directory", dir);
    if (access(dir, W_OK | X_OK) < 0)
        return ks_fail(err, "http-01 webroot %s: not writable: %s", dir, strerror(errno));
    return 0;
}

static char *challenge_path_new(const char *dir, const char *token, ks_err *err)
{
    /* The token comes from the CA; only base64url may become a file name. */
    if (!b64url_is_token(token)) {
        ks_fail(err, "http-01: refusing a challenge token that is not base64url");
        return NULL;
    }
    char *path = ks_strdup_printf("%s/%s", dir, token);
    if (path == NULL)
        ks_fail(err, "out of memory");
    return path;
}

int http01_webroot_publish(const char *dir, const char *token, const char *key_authorization,
                           ks_err *err)
{
    char *path = challenge_path_new(dir, token, err);
    if (path == NULL)
        return -1;
    int rc = ks_write_file_atomic(path, key_authorization, strlen(key_authorization), 0644, err);
    free(path);
    return rc < 0 ? ks_failp(err, "http-01 challenge file") : 0;
}

int http01_webroot_remove(const char *dir, const char *token, ks_err *err)
{
    char *path = challenge_path_new(dir, token, err);
    if (path == NULL)
        return -1;
    int rc = 0;
    if (unlink(path) < 0 && errno != ENOENT)
        rc = ks_fail(err, "removing http-01 challenge file %s: %s", path, strerror(errno));
    free(path);
    return rc;
}
