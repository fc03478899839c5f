#include "signer_proto.h"

#include "b64.h"
#include "json_strict.h"
#include "ks_util.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

int ks_proto_send(int fd, json_object *msg, int may_wait, ks_err *err)
{
    size_t len = 0;
    const char *text = json_object_to_json_string_length(
        msg, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
    if (text == NULL)
        return ks_fail(err, "signer protocol: cannot encode a message");
    if (len > KS_SIGNER_MAX_MSG) {
        ks_fail(err, "signer protocol: message of %zu bytes is over the limit", len);
        return KS_PROTO_TOO_BIG;
    }
    for (;;) {
        ssize_t n = send(fd, text, len, MSG_NOSIGNAL | (may_wait ? 0 : MSG_DONTWAIT));
        if (n < 0 && errno == EAGAIN)
            return ks_fail(err, "signer protocol: the peer is not reading its answers");
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EPIPE || errno == ECONNRESET || errno == ENOTCONN)) {
            ks_fail(err, "signer protocol: the peer has closed the connection");
            return KS_PROTO_CLOSED;
        }
        if (n < 0)
            return ks_fail(err, "signer protocol: send: %s", strerror(errno));
        return 0; /* SOCK_SEQPACKET: all or nothing */
    }
}

#define KS_PROTO_SPIN_US 200

/* Waits for a message: spins briefly before sleeping, because the answer
 * usually comes within tens of microseconds and waking a sleeping process
 * on another CPU costs more than that on a VM (measured with bench_sign:
 * 22 us a round trip when either side sleeps, 7 us when both spin).  Yields while spinning, so that on a shared CPU the
 * other side runs at once. */
static ssize_t recv_waiting(int fd, char *buf, size_t cap)
{
    ssize_t n;
    long long spin_until = ks_now_us() + KS_PROTO_SPIN_US;
    for (;;) {
        n = recv(fd, buf, cap, MSG_TRUNC | MSG_DONTWAIT);
        if (!(n < 0 && (errno == EAGAIN || errno == EINTR)) || ks_now_us() >= spin_until)
            break;
        sched_yield();
    }
    /* Then sleep; SO_RCVTIMEO ends the wait with EAGAIN. */
    while (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        n = recv(fd, buf, cap, MSG_TRUNC);
        if (n < 0 && errno == EAGAIN)
            break;
    }
    return n;
}

int ks_proto_recv(int fd, json_object **msg, int wait, ks_err *err)
{
    /* One byte more than allowed, so that an oversized message shows. */
    static char buf[KS_SIGNER_MAX_MSG + 1];
    ssize_t n;
    *msg = NULL;
    if (wait) {
        n = recv_waiting(fd, buf, sizeof(buf));
    } else {
        do {
            n = recv(fd, buf, sizeof(buf), MSG_TRUNC | MSG_DONTWAIT);
        } while (n < 0 && errno == EINTR);
        if (n < 0 && errno == EAGAIN)
            return 2;
    }
    if (n < 0 && errno == EAGAIN)
        return ks_fail(err, "signer protocol: no answer within %d s", KS_SIGNER_TIMEOUT);
    if (n < 0 && errno == ECONNRESET)
        return 0; /* closed by the peer with messages unread */
    if (n < 0)
        return ks_fail(err, "signer protocol: recv: %s", strerror(errno));
    if (n == 0)
        return 0;
    if ((size_t)n > KS_SIGNER_MAX_MSG)
        return ks_fail(err, "signer protocol: message of %zd bytes is over the %d-byte limit", n,
                       KS_SIGNER_MAX_MSG);
    *msg = ks_json_parse_strict(buf, (size_t)n);
    if (*msg == NULL)
        return ks_fail(err, "signer protocol: a message is not one strict JSON object");
    return 1;
}

int ks_proto_string(json_object *obj, const char *key, const char **out, ks_err *err)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_string))
        return ks_fail(err, "\"%s\" is missing or not a string", key);
    *out = json_object_get_string(v);
    return 0;
}

int ks_proto_hex(json_object *obj, const char *key, unsigned char *out, size_t cap, size_t *len,
                 ks_err *err)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(obj, key, &v))
        return ks_fail(err, "\"%s\" is missing", key);
    return ks_proto_hex_value(v, key, out, cap, len, err);
}

int ks_proto_hex_value(json_object *v, const char *key, unsigned char *out, size_t cap,
                       size_t *len, ks_err *err)
{
    if (!json_object_is_type(v, json_type_string))
        return ks_fail(err, "\"%s\" is not a string", key);
    const char *s = json_object_get_string(v);
    size_t n = strlen(s);
    if (n == 0 || n % 2 != 0 || n / 2 > cap)
        return ks_fail(err, "\"%s\" is not hex of 1 to %zu bytes", key, cap);
    for (size_t i = 0; i < n / 2; i++) {
        int hi = ks_hex_digit(s[2 * i]), lo = ks_hex_digit(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return ks_fail(err, "\"%s\" is not hex", key);
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    *len = n / 2;
    return 0;
}

int ks_proto_b64(json_object *obj, const char *key, unsigned char **out, size_t *len,
                 ks_err *err)
{
    const char *s;
    if (ks_proto_string(obj, key, &s, err) < 0)
        return -1;
    *out = b64url_decode_new(s, strlen(s), len);
    return *out ? 0 : ks_fail(err, "\"%s\" is not base64url", key);
}

void ks_proto_add_hex(json_object *obj, const char *key, const unsigned char *b, size_t len)
{
    char *hex = ks_hex_new(b, len);
    if (hex != NULL)
        json_object_object_add(obj, key, json_object_new_string(hex));
    free(hex);
}

void ks_proto_add_b64(json_object *obj, const char *key, const unsigned char *b, size_t len)
{
    char *text = b64url_encode_new(b, len);
    if (text != NULL)
        json_object_object_add(obj, key, json_object_new_string(text));
    free(text);
}
