/*
 * fuzz_json_response: a JSON body from the CA, through every reader that
 * takes one without a network round trip.
 *
 *   acme_parse_json          Content-Type check and the json-c parse
 *   acme_problem_is,         the problem document of an error response
 *   acme_fail_problem,
 *   acme_problem_summary_new
 *   read_order, read_authz   the order and authorization objects (order.c)
 *   read_window              the renewalInfo object (ari.c)
 *
 * read_order, read_authz and read_window are static, so order.c and ari.c
 * are compiled into this file (the same code ks_acme holds; ks_acme's own
 * order.o and ari.o are then never pulled from the archive).  A rename there
 * breaks this build, not the library.
 *
 * The input is the body, as http.c hands it over: NUL-terminated, body_len
 * the received length (an embedded NUL ends what json-c sees).
 */
#include "../../acme/ari.c"
#include "../../acme/order.c"

#include "fuzz_common.h"

#define FUZZ_URL "https://ca.example/acme/x/1"

/* What reaches an error message or a log must be printable ASCII: server
 * text is escaped on the way in. */
static void check_printable(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        FUZZ_CHECK(*p >= 0x20 && *p < 0x7f);
}

static void fuzz_problem(acme_response *resp)
{
    ks_err err = {{0}};
    char *saved = resp->content_type;
    resp->content_type = "application/problem+json";
    resp->status = 403;
    (void)acme_problem_is(resp, "badNonce");
    FUZZ_CHECK(acme_fail_problem(resp, "fuzzing", FUZZ_URL, &err) == -1);
    check_printable(err.msg);
    resp->content_type = saved;
    resp->status = 200;
}

static void fuzz_order(json_object *obj)
{
    acme_order o = {0};
    ks_err err = {{0}};
    /* Twice into the same struct: acme_order_fetch refreshes an order that
     * already holds the previous answer. */
    for (int round = 0; round < 2; round++) {
        if (read_order(&o, obj, FUZZ_URL, &err) < 0) {
            check_printable(err.msg);
            break;
        }
        FUZZ_CHECK(o.status != NULL && acme_url_ok(o.finalize_url));
        FUZZ_CHECK(o.certificate_url == NULL || acme_url_ok(o.certificate_url));
        for (size_t i = 0; i < o.n_authz; i++)
            FUZZ_CHECK(acme_url_ok(o.authz_urls[i]));
    }
    acme_order_clear(&o);
}

static void fuzz_authz(json_object *obj)
{
    acme_authz a = {0};
    ks_err err = {{0}};
    if (read_authz(&a, obj, FUZZ_URL, &err) == 0) {
        FUZZ_CHECK(a.identifier != NULL && a.status != NULL);
        for (size_t i = 0; i < a.n_challenges; i++) {
            const acme_challenge *ch = &a.challenges[i];
            FUZZ_CHECK(ch->type != NULL && ch->status != NULL && acme_url_ok(ch->url));
        }
        (void)acme_authz_challenge(&a, "http-01");
        if (a.problem != NULL)
            check_printable(a.problem);
    } else {
        check_printable(err.msg);
    }
    acme_authz_clear(&a);
}

static void fuzz_window(json_object *obj)
{
    acme_renewal_info ri = {0};
    ks_err err = {{0}};
    if (read_window(&ri, obj, FUZZ_URL, &err) == 0) {
        FUZZ_CHECK(ri.end > ri.start);
        FUZZ_CHECK(ri.explanation_url == NULL || acme_url_ok(ri.explanation_url));
        time_t pick = acme_ari_pick(&ri);
        FUZZ_CHECK(pick >= ri.start && pick < ri.end);
    } else {
        check_printable(err.msg);
    }
    acme_renewal_info_clear(&ri);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *body = fuzz_cstr_new(data, size);
    acme_response resp = {0};
    resp.status = 200;
    resp.body = body;
    resp.body_len = size;
    resp.content_type = "application/json";
    ks_err err = {{0}};

    fuzz_problem(&resp);
    json_object *obj = acme_parse_json(&resp, FUZZ_URL, &err);
    if (obj == NULL) {
        check_printable(err.msg);
    } else {
        FUZZ_CHECK(json_object_is_type(obj, json_type_object));
        char *summary = acme_problem_summary_new(obj);
        FUZZ_CHECK(summary != NULL);
        check_printable(summary);
        free(summary);
        fuzz_order(obj);
        fuzz_authz(obj);
        fuzz_window(obj);
        json_object_put(obj);
    }
    free(body);
    return 0;
}
