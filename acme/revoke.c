/*
 * ACME client: certificate revocation (RFC 8555 7.6), by the account key or
 * by the certificate's own key.
 */
#include "internal.h"

#include "b64.h"
#include "ks_util.h"

#include <stdlib.h>
#include <string.h>

static char *revoke_payload_new(const unsigned char *der, size_t der_len, int reason)
{
    char *cert64 = b64url_encode_new(der, der_len);
    if (cert64 == NULL)
        return NULL;
    json_object *req = json_object_new_object();
    json_object_object_add(req, "certificate", json_object_new_string(cert64));
    if (reason >= 0)
        json_object_object_add(req, "reason", json_object_new_int(reason));
    char *out = acme_json_text_new(req);
    json_object_put(req);
    free(cert64);
    return out;
}

int acme_certificate_revoke(acme_client *c, const unsigned char *der, size_t der_len,
                            int reason, const acme_signer *cert_key, ks_err *err)
{
    if (c->revoke_cert_url == NULL)
        return ks_fail(err, "revoking a certificate: %s offers no revokeCert", c->directory_url);
    if (reason < -1 || reason > 10 || reason == 7)
        return ks_fail(err, "revoking a certificate: %d is not a CRLReason code (0-6, 8-10)",
                       reason);
    if (cert_key == NULL && (!c->have_signer || c->kid == NULL))
        return ks_fail(err, "revoking a certificate: no registered account");
    char *payload = revoke_payload_new(der, der_len, reason);
    if (payload == NULL)
        return ks_fail(err, "out of memory");
    acme_response resp;
    int rc = cert_key != NULL
                 ? acme_post_signed(c, cert_key, NULL, c->revoke_cert_url, payload, NULL,
                                    ACME_MAX_BODY, &resp, err)
                 : acme_post(c, c->revoke_cert_url, payload, NULL, ACME_MAX_BODY, &resp, err);
    free(payload);
    if (rc < 0)
        return ks_failp(err, "revoking a certificate");
    if (resp.status == 200)
        rc = 0;
    else if (acme_problem_is(&resp, "alreadyRevoked"))
        rc = 1;
    else
        rc = acme_fail_problem(&resp, "revoking a certificate", c->revoke_cert_url, err);
    acme_response_clear(&resp);
    return rc;
}
