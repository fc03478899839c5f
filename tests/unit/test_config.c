/*
 * Configuration loading (keysvc/config.h): every field of a full file, the
 * acmebot defaults, file name templates, and errors that name the file and
 * the JSON path; the dns-01/http-01 settings, zone_update_keys (with TSIG key
 * files written into the test's directory), hooks, directories.http_challenge
 * and which challenge a name gets; acmebot's other settings and sections
 * (config_acmebot.c), acmebot's README examples (tests/unit/configs/), and
 * keysvc check.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "check.h"
#include "test_fs.h"
#include "config.h"
#include "ks_err.h"
#include "ks_log.h"
#include "ks_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <limits.h>
#include <openssl/objects.h>
#include <unistd.h>

typedef struct fixture {
    char dir[64];        /* as created (mkdtemp) */
    char real[PATH_MAX]; /* its realpath: the config's base_dir */
    char path[PATH_MAX]; /* the config file */
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/ks_config_test_XXXXXX");
    if (mkdtemp(f->dir) == NULL || realpath(f->dir, f->real) == NULL) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/keysvc.json", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    int rc = test_remove_tree(f->dir);
    free(f);
    return rc;
}

static void write_config(const fixture *f, const char *text)
{
    FILE *fp = fopen(f->path, "w");
    assert_non_null(fp);
    assert_int_equal(fwrite(text, 1, strlen(text), fp), strlen(text));
    assert_int_equal(fclose(fp), 0);
}

static ks_config *load_ok(const fixture *f, const char *text)
{
    ks_err err = {{0}};
    write_config(f, text);
    ks_config *cfg = ks_config_load(f->path, &err);
    if (cfg == NULL)
        fail_msg("ks_config_load failed: %s", err.msg);
    return cfg;
}

/* Loading must fail, and the message must name the file and contain `want`. */
static void load_fails(const fixture *f, const char *text, const char *want)
{
    ks_err err = {{0}};
    write_config(f, text);
    ks_config *cfg = ks_config_load(f->path, &err);
    if (cfg != NULL) {
        ks_config_free(cfg);
        fail_msg("config was accepted; expected an error mentioning %s", want);
    }
    if (getenv("KS_TEST_VERBOSE") != NULL)
        print_message("expected error: %s\n", err.msg);
    if (strstr(err.msg, f->path) == NULL)
        fail_msg("error \"%s\" does not name the file %s", err.msg, f->path);
    if (strstr(err.msg, want) == NULL)
        fail_msg("error \"%s\" does not contain \"%s\"", err.msg, want);
}

/* base_dir + "/" + rel */
static void assert_under_base(const fixture *f, const char *got, const char *rel)
{
    char want[PATH_MAX + 64];
    snprintf(want, sizeof(want), "%s/%s", f->real, rel);
    assert_non_null(got);
    assert_string_equal(got, want);
}

#define HSM_OK "\"hsm\": {\"token\": \"t\", \"pin_env\": \"KS_PIN\"}"

/* ---- a full configuration ------------------------------------------------ */

static const char full_config[] =
    "{\n"
    "  \"account\": {\"email\": \"admin@example.test\", \"key_curve\": \"secp384r1\"},\n"
    "  \"settings\": {\n"
    "    \"acme_directory_url\": \"https://acme.example.test/directory\",\n"
    "    \"acme_ca_file\": \"ca/root.pem\",\n"
    "    \"key_size\": 2048,\n"
    "    \"key_curve\": \"secp256r1\",\n"
    "    \"key_types\": [\"ecdsa\", \"rsa\"]\n"
    "  },\n"
    "  \"directories\": {\"certificate\": \"certs\", \"chain\": \"/srv/chains\",\n"
    "                  \"private_key\": \"keys\", \"state\": \"state\"},\n"
    "  \"file_names\": {\"certificate\": \"{name}.{key_type}.crt\"},\n"
    "  \"key_type_suffixes\": {\"rsa\": \"-r\", \"ecdsa\": \"-e\"},\n"
    "  \"hsm\": {\"module\": \"/opt/hsm/libpkcs11.so\", \"token\": \"keysvc-test\",\n"
    "          \"token_serial\": \"abc123\", \"pin_file\": \"secrets/pin\"},\n"
    "  \"database\": {\"url\": \"postgresql:///keysvc\"},\n"
    "  \"certificates\": {\n"
    "    \"example.test\": {\"alt_names\": {\"example.test\": [\"@\", \"www\"]},\n"
    "                     \"key_types\": [\"ecdsa\"]},\n"
    "    \"Multi.Test\": {\"common_name\": \"API.Multi.Test\",\n"
    "                   \"alt_names\": {\"@\": [\"@\"], \"multi.test\": [\"@\", \"WWW\"],\n"
    "                                 \"other.test\": \"@\"}},\n"
    "    \"plain.test\": null,\n"
    "    \"cn.test\": {\"common_name\": \"host.cn.test\"},\n"
    "    \"*.wild.test\": {\"alt_names\": {\"wild.test\": [\"*\", \"@\"]}, \"key_types\": "
    "\"rsa\"}\n"
    "  },\n"
    "  \"http_challenges\": {\"example.test\": \"webroot\", \"WWW.Example.Test\": null,\n"
    "                      \"abs.test\": \"/var/www/abs\"}\n"
    "}\n";

static void assert_cert(const ks_cert_config *c, const char *name, const char *cn,
                        const char *const *alts, size_t n_alts, const ks_key_type *types,
                        size_t n_types)
{
    assert_string_equal(c->name, name);
    assert_string_equal(c->common_name, cn);
    assert_int_equal(c->n_alt_names, n_alts);
    for (size_t i = 0; i < n_alts; i++)
        assert_string_equal(c->alt_names[i], alts[i]);
    assert_int_equal(c->n_key_types, n_types);
    for (size_t i = 0; i < n_types; i++)
        assert_int_equal(c->key_types[i], types[i]);
}

static void test_full_config(void **state)
{
    fixture *f = *state;
    ks_config *cfg = load_ok(f, full_config);

    assert_string_equal(cfg->path, f->path);
    assert_string_equal(cfg->base_dir, f->real);

    assert_string_equal(cfg->account_email, "admin@example.test");
    assert_int_equal(cfg->account_key_type, KS_KEY_ECDSA);
    assert_int_equal(cfg->account_key_curve, NID_secp384r1);
    assert_int_equal(cfg->account_key_size, 2048);

    assert_string_equal(cfg->acme_directory_url, "https://acme.example.test/directory");
    assert_under_base(f, cfg->acme_ca_file, "ca/root.pem");
    assert_int_equal(cfg->key_size, 2048);
    assert_int_equal(cfg->key_curve, NID_X9_62_prime256v1);
    assert_int_equal(cfg->renewal_days, 30);

    assert_under_base(f, cfg->dir_certificate, "certs");
    assert_string_equal(cfg->dir_chain, "/srv/chains");
    assert_under_base(f, cfg->dir_private_key, "keys");
    assert_under_base(f, cfg->dir_state, "state");

    assert_string_equal(cfg->fn_certificate, "{name}.{key_type}.crt");
    assert_string_equal(cfg->fn_chain, "{name}_chain{suffix}.pem");
    assert_string_equal(cfg->fn_private_key, "{name}{suffix}.key");
    assert_string_equal(cfg->suffix[KS_KEY_RSA], "-r");
    assert_string_equal(cfg->suffix[KS_KEY_ECDSA], "-e");

    assert_string_equal(cfg->hsm_module, "/opt/hsm/libpkcs11.so");
    assert_string_equal(cfg->hsm_token, "keysvc-test");
    assert_string_equal(cfg->hsm_token_serial, "abc123");
    assert_null(cfg->hsm_pin_env);
    assert_under_base(f, cfg->hsm_pin_file, "secrets/pin");

    assert_string_equal(cfg->database_url, "postgresql:///keysvc");
    assert_null(cfg->database_run_as); /* pgcluster picks its default */

    assert_int_equal(cfg->n_certs, 5);
    static const ks_key_type ec_only[] = {KS_KEY_ECDSA};
    static const ks_key_type rsa_only[] = {KS_KEY_RSA};
    static const ks_key_type from_settings[] = {KS_KEY_ECDSA, KS_KEY_RSA};
    static const char *const ex_alts[] = {"example.test", "www.example.test"};
    assert_cert(&cfg->certs[0], "example.test", "example.test", ex_alts, 2, ec_only, 1);
    static const char *const multi_alts[] = {"api.multi.test", "multi.test", "www.multi.test",
                                             "other.test"};
    assert_cert(&cfg->certs[1], "Multi.Test", "api.multi.test", multi_alts, 4, from_settings, 2);
    static const char *const plain_alts[] = {"plain.test"};
    assert_cert(&cfg->certs[2], "plain.test", "plain.test", plain_alts, 1, from_settings, 2);
    static const char *const cn_alts[] = {"host.cn.test"};
    assert_cert(&cfg->certs[3], "cn.test", "host.cn.test", cn_alts, 1, from_settings, 2);
    static const char *const wild_alts[] = {"*.wild.test", "wild.test"};
    assert_cert(&cfg->certs[4], "*.wild.test", "*.wild.test", wild_alts, 2, rsa_only, 1);

    assert_int_equal(cfg->n_http_challenges, 3);
    assert_string_equal(cfg->http_challenges[0].fqdn, "example.test");
    assert_under_base(f, cfg->http_challenges[0].directory, "webroot");
    assert_string_equal(cfg->http_challenges[1].fqdn, "www.example.test");
    assert_null(cfg->http_challenges[1].directory);
    assert_string_equal(cfg->http_challenges[2].fqdn, "abs.test");
    assert_string_equal(cfg->http_challenges[2].directory, "/var/www/abs");

    char webroot[PATH_MAX + 16];
    snprintf(webroot, sizeof(webroot), "%s/webroot", f->real);
    assert_string_equal(ks_config_webroot(cfg, "example.test"), webroot);
    assert_null(ks_config_webroot(cfg, "www.example.test"));
    assert_null(ks_config_webroot(cfg, "unknown.test"));

    ks_config_free(cfg);
}

static void test_defaults(void **state)
{
    fixture *f = *state;
    ks_config *cfg = load_ok(f, "{" HSM_OK "}");
    assert_null(cfg->account_email);
    assert_int_equal(cfg->account_key_type, KS_KEY_ECDSA);
    assert_int_equal(cfg->account_key_curve, NID_X9_62_prime256v1);
    assert_string_equal(cfg->acme_directory_url, "https://acme-v02.api.letsencrypt.org/directory");
    assert_null(cfg->acme_ca_file);
    assert_int_equal(cfg->key_size, 4096);
    assert_int_equal(cfg->key_curve, NID_secp384r1);
    assert_int_equal(cfg->renewal_days, 30);
    assert_string_equal(cfg->dir_certificate, "/etc/ssl/certs");
    assert_string_equal(cfg->dir_chain, "/etc/ssl/certs");
    assert_string_equal(cfg->dir_private_key, "/etc/ssl/private");
    assert_non_null(cfg->dir_state);
    assert_int_equal(cfg->dir_state[0], '/');
    assert_string_equal(cfg->fn_certificate, "{name}{suffix}.pem");
    assert_string_equal(cfg->fn_chain, "{name}_chain{suffix}.pem");
    assert_string_equal(cfg->fn_private_key, "{name}{suffix}.key");
    assert_string_equal(cfg->suffix[KS_KEY_RSA], ".rsa");
    assert_string_equal(cfg->suffix[KS_KEY_ECDSA], ".ecdsa");
    assert_non_null(cfg->hsm_module);
    assert_string_equal(cfg->hsm_token, "t");
    assert_null(cfg->hsm_token_serial);
    assert_string_equal(cfg->hsm_pin_env, "KS_PIN");
    assert_null(cfg->hsm_pin_file);
    assert_null(cfg->database_url);
    assert_int_equal(cfg->n_certs, 0);
    assert_int_equal(cfg->n_http_challenges, 0);
    ks_config_free(cfg);
}

static void test_default_key_types_follow_settings(void **state)
{
    fixture *f = *state;
    /* key_size 0 turns RSA off: a certificate without key_types gets ECDSA only. */
    ks_config *cfg = load_ok(f, "{" HSM_OK ", \"settings\": {\"key_size\": 0},"
                                "\"certificates\": {\"a.test\": null}}");
    assert_int_equal(cfg->key_size, 0);
    assert_int_equal(cfg->n_certs, 1);
    assert_int_equal(cfg->certs[0].n_key_types, 1);
    assert_int_equal(cfg->certs[0].key_types[0], KS_KEY_ECDSA);
    ks_config_free(cfg);
    /* Without settings.key_types both, RSA first. */
    cfg = load_ok(f, "{" HSM_OK ", \"certificates\": {\"a.test\": {}}}");
    assert_int_equal(cfg->certs[0].n_key_types, 2);
    assert_int_equal(cfg->certs[0].key_types[0], KS_KEY_RSA);
    assert_int_equal(cfg->certs[0].key_types[1], KS_KEY_ECDSA);
    ks_config_free(cfg);
}

static void test_null_directory(void **state)
{
    fixture *f = *state;
    ks_config *cfg = load_ok(f, "{" HSM_OK ", \"directories\": {\"chain\": null}}");
    assert_null(cfg->dir_chain);
    assert_string_equal(cfg->dir_certificate, "/etc/ssl/certs");
    assert_string_equal(cfg->dir_private_key, "/etc/ssl/private");
    ks_config_free(cfg);
}

static void test_output_path(void **state)
{
    fixture *f = *state;
    ks_config *cfg = load_ok(f, "{" HSM_OK "}");
    ks_err err = {{0}};
    struct {
        const char *tmpl, *name;
        ks_key_type type;
        const char *want;
    } cases[] = {
        {"{name}{suffix}.pem", "example.test", KS_KEY_RSA, "/out/example.test.rsa.pem"},
        {"{name}{suffix}.pem", "example.test", KS_KEY_ECDSA, "/out/example.test.ecdsa.pem"},
        {"{name}_chain{suffix}.pem", "*.wild.test", KS_KEY_ECDSA,
         "/out/_.wild.test_chain.ecdsa.pem"},
        {"{name}{suffix}.key", "a*b*c", KS_KEY_RSA, "/out/a_b_c.rsa.key"},
        {"{key_type}-{name}-{key_type}", "x", KS_KEY_ECDSA, "/out/ecdsa-x-ecdsa"},
        {"plain.pem", "x", KS_KEY_RSA, "/out/plain.pem"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *p =
            ks_config_output_path(cfg, "/out", cases[i].tmpl, cases[i].name, cases[i].type, &err);
        if (p == NULL)
            fail_msg("template %s: %s", cases[i].tmpl, err.msg);
        assert_string_equal(p, cases[i].want);
        free(p);
    }
    /* Unknown fields and '/' in the result are refused. */
    assert_null(ks_config_output_path(cfg, "/out", "{bogus}.pem", "x", KS_KEY_RSA, &err));
    assert_non_null(strstr(err.msg, "{bogus}.pem"));
    err.msg[0] = '\0';
    assert_null(ks_config_output_path(cfg, "/out", "../{name}.pem", "x", KS_KEY_RSA, &err));
    assert_true(err.msg[0] != '\0');
    ks_config_free(cfg);

    /* Configured suffixes are used. */
    cfg = load_ok(f, "{" HSM_OK ", \"key_type_suffixes\": {\"rsa\": \"_R\", \"ecdsa\": \"_E\"}}");
    char *p = ks_config_output_path(cfg, "/o", cfg->fn_private_key, "n.test", KS_KEY_ECDSA, &err);
    assert_non_null(p);
    assert_string_equal(p, "/o/n.test_E.key");
    free(p);
    ks_config_free(cfg);
}

/* ---- warnings ----------------------------------------------------------- */

static void test_unknown_keys_warn(void **state)
{
    fixture *f = *state;
    char errpath[PATH_MAX];
    snprintf(errpath, sizeof(errpath), "%s/stderr.txt", f->dir);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    int fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(saved >= 0 && fd >= 0);
    assert_true(dup2(fd, STDERR_FILENO) >= 0);
    close(fd);

    ks_err err = {{0}};
    write_config(f, "{" HSM_OK ", \"settings\": {\"no_such_key\": 1}, \"bogus_top\": true}");
    ks_config *cfg = ks_config_load(f->path, &err);

    fflush(stderr);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    if (cfg == NULL)
        fail_msg("unknown keys must not fail the load: %s", err.msg);
    ks_config_free(cfg);

    char text[4096] = "";
    FILE *fp = fopen(errpath, "r");
    assert_non_null(fp);
    size_t n = fread(text, 1, sizeof(text) - 1, fp);
    fclose(fp);
    text[n] = '\0';
    assert_non_null(strstr(text, "settings.no_such_key"));
    assert_non_null(strstr(text, "bogus_top"));
    assert_non_null(strstr(text, f->path));
}

/* ---- errors ------------------------------------------------------------- */

static void test_syntax_error_line(void **state)
{
    fixture *f = *state;
    static const char text[] = "{\n"
                               "  " HSM_OK ",\n"
                               "  \"settings\": {\"key_size\": 2048,,}\n"
                               "}\n";
    load_fails(f, text, "JSON");
    ks_err err = {{0}};
    assert_null(ks_config_load(f->path, &err));
    char prefix[PATH_MAX + 8];
    snprintf(prefix, sizeof(prefix), "%s:3:", f->path);
    const char *at = strstr(err.msg, prefix);
    if (at == NULL)
        fail_msg("error \"%s\" does not contain \"%s\"", err.msg, prefix);
    int col = 0;
    assert_int_equal(sscanf(at + strlen(prefix), "%d:", &col), 1);
    /* The second ',' is column 33; allow the tokener to stop next to it. */
    if (col < 32 || col > 34)
        fail_msg("column %d in \"%s\"", col, err.msg);
}

static void test_trailing_garbage(void **state)
{
    fixture *f = *state;
    load_fails(f, "{" HSM_OK "}\n\n  x\n", ":3:3:");
    load_fails(f, "{" HSM_OK "} {}", ":1:");
}

static void test_empty_and_non_object(void **state)
{
    fixture *f = *state;
    load_fails(f, "", "JSON");
    load_fails(f, "[1, 2]", "object");
}

static void test_missing_file(void **state)
{
    fixture *f = *state;
    ks_err err = {{0}};
    char p[PATH_MAX + 16];
    snprintf(p, sizeof(p), "%s/nonexistent.json", f->dir);
    assert_null(ks_config_load(p, &err));
    assert_non_null(strstr(err.msg, p));
}

static void test_wrong_type(void **state)
{
    fixture *f = *state;
    load_fails(f, "{" HSM_OK ", \"settings\": {\"key_size\": \"2048\"}}", "settings.key_size");
    load_fails(f, "{" HSM_OK ", \"settings\": []}", ": settings: ");
    load_fails(f, "{" HSM_OK ", \"account\": {\"email\": 5}}", "account.email");
    load_fails(f, "{" HSM_OK ", \"settings\": {\"renewal_days\": -1}}", "settings.renewal_days");
}

static void test_bad_key_type(void **state)
{
    fixture *f = *state;
    load_fails(f,
               "{" HSM_OK ", \"certificates\": {\"a.test\": {\"key_types\": [\"rsa\", \"dsa\"]}}}",
               "certificates[\"a.test\"].key_types[1]");
    load_fails(f,
               "{" HSM_OK ", \"certificates\": {\"a.test\": {\"key_types\": [\"rsa\", \"rsa\"]}}}",
               "certificates[\"a.test\"].key_types[1]");
    load_fails(f, "{" HSM_OK ", \"settings\": {\"key_types\": [\"ecdsa\", 3]}}",
               "settings.key_types[1]");
    /* A type turned off in settings cannot be asked for. */
    load_fails(f,
               "{" HSM_OK ", \"settings\": {\"key_size\": 0},"
               "\"certificates\": {\"a.test\": {\"key_types\": [\"rsa\"]}}}",
               "certificates[\"a.test\"].key_types");
}

static void test_common_name_not_in_alt_names(void **state)
{
    fixture *f = *state;
    load_fails(f,
               "{" HSM_OK ", \"certificates\": {\"a.test\": {\"alt_names\": "
               "{\"b.test\": [\"@\", \"www\"]}}}}",
               "certificates[\"a.test\"].alt_names");
}

static void test_duplicate_alt_name(void **state)
{
    fixture *f = *state;
    /* Names are compared after lower-casing. */
    load_fails(f,
               "{" HSM_OK ", \"certificates\": {\"a.test\": {\"alt_names\": "
               "{\"a.test\": [\"@\", \"www\", \"WWW\"]}}}}",
               "certificates[\"a.test\"].alt_names[\"a.test\"][2]");
}

static void test_invalid_dns_name(void **state)
{
    fixture *f = *state;
    load_fails(f,
               "{" HSM_OK ", \"certificates\": {\"a.test\": {\"alt_names\": "
               "{\"a.test\": [\"@\", \"bad_name\"]}}}}",
               "certificates[\"a.test\"].alt_names[\"a.test\"][1]");
    load_fails(f,
               "{" HSM_OK ", \"certificates\": {\"a.test\": {\"alt_names\": "
               "{\"a.test\": [\"@\", \"x..y\"]}}}}",
               "certificates[\"a.test\"].alt_names[\"a.test\"][1]");
    load_fails(f, "{" HSM_OK ", \"http_challenges\": {\"bad host\": \"w\"}}",
               "http_challenges[\"bad host\"]");
}

/* Outputs that would land on one path are refused at load time. */
static void test_output_collisions(void **state)
{
    fixture *f = *state;
    load_fails(f,
               "{" HSM_OK ", \"key_type_suffixes\": {\"rsa\": \"\", \"ecdsa\": \"\"},"
               " \"certificates\": {\"a.test\": {\"key_types\": [\"rsa\", \"ecdsa\"]}}}",
               "would both be");
    load_fails(f,
               "{" HSM_OK ", \"certificates\": {\"a\": {\"common_name\": \"a.test\"},"
               " \"a_chain\": {\"common_name\": \"b.test\"}}}",
               "the chain file of \"a\"");
    /* One directory spelled two ways is still one directory. */
    load_fails(f,
               "{" HSM_OK ", \"directories\": {\"certificate\": \"c/\", \"chain\": \"./c//\"},"
               " \"file_names\": {\"chain\": \"{name}{suffix}.pem\"},"
               " \"certificates\": {\"a.test\": {\"key_types\": [\"ecdsa\"]}}}",
               "would both be");
    /* One key type per certificate: empty suffixes are fine. */
    ks_err err = {{0}};
    write_config(f, "{" HSM_OK ", \"key_type_suffixes\": {\"rsa\": \"\", \"ecdsa\": \"\"},"
                    " \"certificates\": {\"a.test\": {\"key_types\": [\"ecdsa\"]}}}");
    ks_config *cfg = ks_config_load(f->path, &err);
    if (cfg == NULL)
        fail_msg("rejected: %s", err.msg);
    ks_config_free(cfg);
}

/* LDH labels (RFC 1123, RFC 5890) neither start nor end with a hyphen. */
static void test_hyphen_labels(void **state)
{
    fixture *f = *state;
    load_fails(f,
               "{" HSM_OK ", \"certificates\": {\"a.test\": {\"alt_names\": "
               "{\"a.test\": [\"@\", \"-www\"]}}}}",
               "certificates[\"a.test\"].alt_names[\"a.test\"][1]");
    load_fails(f,
               "{" HSM_OK ", \"certificates\": {\"a.test\": {\"alt_names\": "
               "{\"a.test\": [\"@\", \"www-\"]}}}}",
               "certificates[\"a.test\"].alt_names[\"a.test\"][1]");
}

static void test_hsm_errors(void **state)
{
    fixture *f = *state;
    /* The JSON path is exactly "hsm" (or "hsm.token"). */
    load_fails(f, "{\"settings\": {\"key_size\": 2048}}", ": hsm: ");
    load_fails(f, "{\"hsm\": {\"token\": \"t\", \"pin_env\": \"P\", \"pin_file\": \"/p\"}}",
               ": hsm: ");
    load_fails(f, "{\"hsm\": {\"token\": \"t\"}}", ": hsm: ");
    load_fails(f, "{\"hsm\": {\"pin_env\": \"P\"}}", ": hsm.token: ");
}

static void test_key_size_1024_rejected(void **state)
{
    fixture *f = *state;
    load_fails(f, "{" HSM_OK ", \"settings\": {\"key_size\": 1024}}", "settings.key_size");
    load_fails(f, "{" HSM_OK ", \"account\": {\"key_type\": \"rsa\", \"key_size\": 1024}}",
               "account.key_size");
}

static void test_directory_url_must_be_https(void **state)
{
    fixture *f = *state;
    load_fails(f,
               "{" HSM_OK ", \"settings\": {\"acme_directory_url\": "
               "\"http://acme.example.test/directory\"}}",
               "settings.acme_directory_url");
}

static void test_bad_curve_and_nulls(void **state)
{
    fixture *f = *state;
    load_fails(f, "{" HSM_OK ", \"settings\": {\"key_curve\": \"secp256k1\"}}",
               "settings.key_curve");
    load_fails(f, "{" HSM_OK ", \"directories\": {\"state\": null}}", "directories.state");
}

static void test_protocol_settings(void **state)
{
    fixture *f = *state;
    ks_config *cfg = load_ok(
        f, "{" HSM_OK ", \"account\": {\"eab_kid\": \"k1\", \"eab_hmac_key\": \"c2VjcmV0\","
           " \"eab_alg\": \"HS384\"},"
           " \"settings\": {\"max_domains_per_order\": 50, \"preferred_chain\": \"Root X\","
           " \"ari\": false},"
           " \"certificates\": {\"a.test\": {\"alt_names\": {\"a.test\": [\"@\", \"*\", \"t\","
           " \"w\"]}}},"
           " \"http_challenges\": {\"w.a.test\": \"/tmp\"},"
           " \"tls_alpn_challenges\": {\"t.a.test\": \"[::1]:8443\"},"
           " \"dns_hooks\": {\"auth\": \"/bin/hook add\", \"cleanup\": \"/bin/hook del\","
           " \"timeout\": 20}}");
    assert_string_equal(cfg->account_eab_kid, "k1");
    assert_string_equal(cfg->account_eab_alg, "HS384");
    assert_int_equal(cfg->max_domains_per_order, 50);
    assert_string_equal(cfg->preferred_chain, "Root X");
    assert_int_equal(cfg->ari, 0);
    assert_int_equal(cfg->dns_hook_timeout, 20);
    /* Each name by its method; a wildcard always by dns-01. */
    assert_int_equal(ks_config_challenge(cfg, "w.a.test"), KS_CHALLENGE_HTTP01);
    assert_int_equal(ks_config_challenge(cfg, "t.a.test"), KS_CHALLENGE_TLSALPN01);
    assert_int_equal(ks_config_challenge(cfg, "a.test"), KS_CHALLENGE_DNS01);
    assert_int_equal(ks_config_challenge(cfg, "*.a.test"), KS_CHALLENGE_DNS01);
    const ks_tls_alpn_challenge *t = ks_config_tls_alpn(cfg, "t.a.test");
    assert_non_null(t);
    assert_string_equal(t->address, "::1");
    assert_int_equal(t->port, 8443);
    ks_config_free(cfg);
}

static void test_protocol_setting_errors(void **state)
{
    fixture *f = *state;
    load_fails(f, "{" HSM_OK ", \"account\": {\"eab_kid\": \"k1\"}}", "account.eab_hmac_key");
    load_fails(f, "{" HSM_OK ", \"account\": {\"eab_kid\": \"k\", \"eab_hmac_key\": \"a+b/\"}}",
               "account.eab_hmac_key");
    load_fails(f,
               "{" HSM_OK ", \"account\": {\"eab_kid\": \"k\", \"eab_hmac_key\": \"ab\","
               " \"eab_alg\": \"HS1\"}}",
               "account.eab_alg");
    load_fails(f, "{" HSM_OK ", \"tls_alpn_challenges\": {\"a.test\": \"localhost:443\"}}",
               "tls_alpn_challenges");
    load_fails(f, "{" HSM_OK ", \"tls_alpn_challenges\": {\"a.test\": \"127.0.0.1:0\"}}",
               "tls_alpn_challenges");
    load_fails(f, "{" HSM_OK ", \"tls_alpn_challenges\": {\"*.a.test\": \"127.0.0.1:443\"}}",
               "wildcards need dns-01");
    load_fails(f, "{" HSM_OK ", \"dns_hooks\": {\"auth\": \"x 'unterminated\"}}", "dns_hooks");
    load_fails(f, "{" HSM_OK ", \"settings\": {\"max_domains_per_order\": 0}}",
               "settings.max_domains_per_order");
}

/* ---- dns-01 and http-01: settings, zone_update_keys, hooks --------------- */

/* A real tsig-keygen secret (hmac-sha256, 32 bytes). */
#define TSIG_SECRET "1VtzAmeFJNSMqa7EiiMgKiQ0SisBEH5YPLcrzeDVcHw="

/* Writes `rel` (relative to the fixture's directory; "keys/x" creates
 * "keys") holding a tsig-keygen key statement with `algorithm`. */
static void write_key_file(const fixture *f, const char *rel, const char *algorithm)
{
    char p[PATH_MAX + 64];
    const char *slash = strchr(rel, '/');
    if (slash != NULL) {
        snprintf(p, sizeof(p), "%s/%.*s", f->dir, (int)(slash - rel), rel);
        if (mkdir(p, 0700) < 0 && access(p, F_OK) < 0)
            fail_msg("mkdir %s", p);
    }
    snprintf(p, sizeof(p), "%s/%s", f->dir, rel);
    FILE *fp = fopen(p, "w");
    assert_non_null(fp);
    assert_true(fprintf(fp, "key \"k\" {\n\talgorithm %s;\n\tsecret \"" TSIG_SECRET "\";\n};\n",
                        algorithm) > 0);
    assert_int_equal(fclose(fp), 0);
}

/* Loading fails with an error holding every one of `wants` (NULL-terminated). */
static void load_fails_all(const fixture *f, const char *text, const char *const *wants)
{
    for (size_t i = 0; wants[i] != NULL; i++)
        load_fails(f, text, wants[i]);
}

/* Loads a configuration that must load, with its standard error (warnings)
 * captured into `text`. */
static ks_config *load_ok_capturing(const fixture *f, const char *config, char *text, size_t cap)
{
    char errpath[PATH_MAX];
    snprintf(errpath, sizeof(errpath), "%s/stderr.txt", f->dir);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    int fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(saved >= 0 && fd >= 0);
    assert_true(dup2(fd, STDERR_FILENO) >= 0);
    close(fd);
    ks_err err = {{0}};
    write_config(f, config);
    ks_config *cfg = ks_config_load(f->path, &err);
    fflush(stderr);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    if (cfg == NULL)
        fail_msg("ks_config_load failed: %s", err.msg);
    FILE *fp = fopen(errpath, "r");
    assert_non_null(fp);
    size_t n = fread(text, 1, cap - 1, fp);
    fclose(fp);
    text[n] = '\0';
    return cfg;
}

static void test_dns_settings_defaults(void **state)
{
    fixture *f = *state;
    ks_config *cfg = load_ok(f, "{" HSM_OK "}");
    assert_int_equal(cfg->dns.n_resolvers, 0);
    assert_int_equal(cfg->dns.auth_port, 53);
    assert_int_equal(cfg->max_dns_lookup_attempts, 60);
    assert_int_equal(cfg->dns_lookup_delay, 10);
    assert_int_equal(cfg->hook_timeout, 300);
    assert_null(cfg->reload_zone_command);
    assert_null(cfg->http_responder_address);
    assert_null(cfg->http_challenge_template);
    assert_string_equal(cfg->dir_update_key, "/etc/ssl/update_keys");
    assert_string_equal(cfg->dir_challenge, "/etc/ssl/challenges");
    assert_string_equal(cfg->fn_challenge, "{name}");
    assert_int_equal(cfg->n_zone_keys, 0);
    for (int i = 0; i < KS_HOOK_COUNT; i++)
        assert_null(cfg->hooks[i]);
    assert_false(ks_config_has_dns(cfg));
    ks_config_free(cfg);
}

static void test_dns_settings(void **state)
{
    fixture *f = *state;
    ks_config *cfg =
        load_ok(f, "{" HSM_OK ", \"settings\": {"
                   " \"dns_resolvers\": [\"192.0.2.53\", \"[2001:db8::53]:5353\", \"::1\","
                   " \"127.0.0.1:1053\"],"
                   " \"dns_port\": 5300, \"max_dns_lookup_attempts\": 5, \"dns_lookup_delay\": 0,"
                   " \"hook_timeout\": 42,"
                   " \"reload_zone_command\": \"/usr/sbin/rndc reload 'a zone'\","
                   " \"http_responder\": \"0.0.0.0:8080\"}}");
    assert_int_equal(cfg->dns.n_resolvers, 4);
    assert_string_equal(cfg->dns.resolvers[0].addr, "192.0.2.53");
    assert_int_equal(cfg->dns.resolvers[0].port, 53);
    assert_string_equal(cfg->dns.resolvers[1].addr, "2001:db8::53");
    assert_int_equal(cfg->dns.resolvers[1].port, 5353);
    assert_string_equal(cfg->dns.resolvers[2].addr, "::1");
    assert_int_equal(cfg->dns.resolvers[2].port, 53);
    assert_string_equal(cfg->dns.resolvers[3].addr, "127.0.0.1");
    assert_int_equal(cfg->dns.resolvers[3].port, 1053);
    /* dns_port is the authoritative servers' port, not the resolvers'. */
    assert_int_equal(cfg->dns.auth_port, 5300);
    assert_int_equal(cfg->max_dns_lookup_attempts, 5);
    assert_int_equal(cfg->dns_lookup_delay, 0);
    assert_int_equal(cfg->hook_timeout, 42);
    assert_string_equal(cfg->reload_zone_command, "/usr/sbin/rndc reload 'a zone'");
    assert_string_equal(cfg->http_responder_address, "0.0.0.0");
    assert_int_equal(cfg->http_responder_port, 8080);
    assert_true(ks_config_has_dns(cfg)); /* reload_zone_command */
    ks_config_free(cfg);

    /* http_responder: IPv6 in brackets; the port defaults to 80; null is none. */
    cfg = load_ok(f, "{" HSM_OK ", \"settings\": {\"http_responder\": \"[::]:8081\"}}");
    assert_string_equal(cfg->http_responder_address, "::");
    assert_int_equal(cfg->http_responder_port, 8081);
    ks_config_free(cfg);
    cfg = load_ok(f, "{" HSM_OK ", \"settings\": {\"http_responder\": \"127.0.0.1\"}}");
    assert_string_equal(cfg->http_responder_address, "127.0.0.1");
    assert_int_equal(cfg->http_responder_port, 80);
    ks_config_free(cfg);
    cfg = load_ok(f, "{" HSM_OK ", \"settings\": {\"http_responder\": null,"
                     " \"dns_resolvers\": []}}");
    assert_null(cfg->http_responder_address);
    assert_int_equal(cfg->dns.n_resolvers, 0);
    ks_config_free(cfg);
}

static void test_dns_setting_errors(void **state)
{
    fixture *f = *state;
    load_fails(f,
               "{" HSM_OK ", \"settings\": {\"dns_resolvers\": [\"192.0.2.53\","
               " \"ns.example.test\"]}}",
               "settings.dns_resolvers[1]");
    load_fails(f,
               "{" HSM_OK ", \"settings\": {\"dns_resolvers\": [\"192.0.2.53\","
               " \"ns.example.test:53\"]}}",
               "settings.dns_resolvers[1]: expected");
    load_fails(f, "{" HSM_OK ", \"settings\": {\"dns_resolvers\": [53]}}",
               "settings.dns_resolvers[0]");
    load_fails(f, "{" HSM_OK ", \"settings\": {\"dns_resolvers\": [\"192.0.2.1:0\"]}}",
               "settings.dns_resolvers[0]");
    load_fails(f, "{" HSM_OK ", \"settings\": {\"dns_resolvers\": \"192.0.2.53\"}}",
               "settings.dns_resolvers: expected a list");
    load_fails(f,
               "{" HSM_OK ", \"settings\": {\"dns_resolvers\": [\"10.0.0.1\", \"10.0.0.2\","
               " \"10.0.0.3\", \"10.0.0.4\", \"10.0.0.5\", \"10.0.0.6\", \"10.0.0.7\","
               " \"10.0.0.8\", \"10.0.0.9\"]}}",
               "settings.dns_resolvers: at most 8");
    load_fails(f, "{" HSM_OK ", \"settings\": {\"dns_port\": 0}}", "settings.dns_port");
    load_fails(f, "{" HSM_OK ", \"settings\": {\"dns_port\": 65536}}", "settings.dns_port");
    load_fails(f, "{" HSM_OK ", \"settings\": {\"dns_port\": \"53\"}}", "settings.dns_port");
    load_fails(f, "{" HSM_OK ", \"settings\": {\"max_dns_lookup_attempts\": 0}}",
               "settings.max_dns_lookup_attempts");
    load_fails(f, "{" HSM_OK ", \"settings\": {\"dns_lookup_delay\": -1}}",
               "settings.dns_lookup_delay");
    load_fails(f, "{" HSM_OK ", \"settings\": {\"hook_timeout\": 0}}", "settings.hook_timeout");
    load_fails(f, "{" HSM_OK ", \"settings\": {\"reload_zone_command\": \"rndc 'reload\"}}",
               "settings.reload_zone_command");
    load_fails(f, "{" HSM_OK ", \"settings\": {\"reload_zone_command\": \"\"}}",
               "settings.reload_zone_command");
    load_fails(f, "{" HSM_OK ", \"settings\": {\"http_responder\": \"localhost:80\"}}",
               "settings.http_responder");
    load_fails(f, "{" HSM_OK ", \"settings\": {\"http_responder\": \"0.0.0.0:0\"}}",
               "settings.http_responder");
    load_fails(f, "{" HSM_OK ", \"settings\": {\"http_responder\": 80}}",
               "settings.http_responder");
}

static void test_zone_update_keys(void **state)
{
    fixture *f = *state;
    write_key_file(f, "keys/example.test.key", "hmac-sha256");
    write_key_file(f, "abs.key", "hmac-sha512");
    char text[2 * PATH_MAX], abs[PATH_MAX + 16];
    snprintf(abs, sizeof(abs), "%s/abs.key", f->real);
    snprintf(text, sizeof(text),
             "{" HSM_OK ", \"directories\": {\"update_key\": \"keys\"},"
             " \"zone_update_keys\": {"
             "  \"example.test\": \"example.test.key\","
             "  \"Other.Test.\": {\"file\": \"%s\", \"server\": \"ns1.other.test\","
             " \"port\": 5353},"
             "  \"third.test\": {\"file\": \"example.test.key\"},"
             "  \"none.test\": null}}",
             abs);
    ks_config *cfg = load_ok(f, text);
    assert_under_base(f, cfg->dir_update_key, "keys");
    assert_int_equal(cfg->n_zone_keys, 3);
    /* The string form: a file name relative to directories.update_key. */
    const ks_zone_key *k = ks_config_zone_key(cfg, "example.test");
    assert_non_null(k);
    assert_string_equal(k->zone, "example.test");
    assert_under_base(f, k->file, "keys/example.test.key");
    assert_null(k->server);
    assert_int_equal(k->port, 0);
    /* The object form; the zone in lower case without its trailing dot. */
    k = ks_config_zone_key(cfg, "other.test");
    assert_non_null(k);
    assert_string_equal(k->zone, "other.test");
    assert_string_equal(k->file, abs);
    assert_string_equal(k->server, "ns1.other.test");
    assert_int_equal(k->port, 5353);
    k = ks_config_zone_key(cfg, "third.test");
    assert_non_null(k);
    assert_under_base(f, k->file, "keys/example.test.key");
    assert_null(k->server);
    assert_int_equal(k->port, 0);
    /* null: the zone has no key. */
    assert_null(ks_config_zone_key(cfg, "none.test"));
    assert_null(ks_config_zone_key(cfg, "Other.Test."));
    assert_true(ks_config_has_dns(cfg));
    ks_config_free(cfg);

    /* Only nulls: no dns-01 method. */
    cfg = load_ok(f, "{" HSM_OK ", \"zone_update_keys\": {\"a.test\": null}}");
    assert_int_equal(cfg->n_zone_keys, 0);
    assert_false(ks_config_has_dns(cfg));
    ks_config_free(cfg);
}

static void test_zone_update_key_errors(void **state)
{
    fixture *f = *state;
    write_key_file(f, "keys/good.key", "hmac-sha256");
    write_key_file(f, "keys/sha384.key", "hmac-sha384");
    write_key_file(f, "keys/sha224.key", "hmac-sha224");
    /* The key file is loaded at config load: a missing one is an error at
     * the zone's JSON path, naming the file. */
    static const char *const missing[] = {"zone_update_keys[\"example.test\"]", "missing.key",
                                          NULL};
    load_fails_all(f,
                   "{" HSM_OK ", \"directories\": {\"update_key\": \"keys\"},"
                   " \"zone_update_keys\": {\"example.test\": \"missing.key\"}}",
                   missing);
    /* Relative names are under directories.update_key, not the config's
     * directory (keys/good.key is not at <base>/good.key). */
    load_fails(f, "{" HSM_OK ", \"zone_update_keys\": {\"example.test\": \"good.key\"}}",
               "zone_update_keys[\"example.test\"]");
    static const char *const sha384[] = {"zone_update_keys[\"example.test\"]", "hmac-sha384",
                                         "hmac-sha256", NULL};
    load_fails_all(f,
                   "{" HSM_OK ", \"directories\": {\"update_key\": \"keys\"},"
                   " \"zone_update_keys\": {\"example.test\": \"sha384.key\"}}",
                   sha384);
    load_fails(f,
               "{" HSM_OK ", \"directories\": {\"update_key\": \"keys\"},"
               " \"zone_update_keys\": {\"example.test\": {\"file\": \"sha224.key\"}}}",
               "hmac-sha224");
    static const char *const no_file[] = {"zone_update_keys[\"example.test\"]", "\"file\"", NULL};
    load_fails_all(f,
                   "{" HSM_OK ", \"directories\": {\"update_key\": \"keys\"},"
                   " \"zone_update_keys\": {\"example.test\": {\"server\": \"192.0.2.1\"}}}",
                   no_file);
    load_fails(f,
               "{" HSM_OK ", \"directories\": {\"update_key\": \"keys\"},"
               " \"zone_update_keys\": {\"example.test\": {\"file\": \"good.key\","
               " \"port\": 0}}}",
               "zone_update_keys[\"example.test\"].port");
    load_fails(f,
               "{" HSM_OK ", \"directories\": {\"update_key\": \"keys\"},"
               " \"zone_update_keys\": {\"example.test\": {\"file\": \"good.key\","
               " \"port\": 65536}}}",
               "zone_update_keys[\"example.test\"].port");
    load_fails(f,
               "{" HSM_OK ", \"directories\": {\"update_key\": \"keys\"},"
               " \"zone_update_keys\": {\"example.test\": {\"file\": 5}}}",
               "zone_update_keys[\"example.test\"].file");
    load_fails(f, "{" HSM_OK ", \"zone_update_keys\": {\"example.test\": 5}}",
               "zone_update_keys[\"example.test\"]: expected");
    load_fails(f, "{" HSM_OK ", \"zone_update_keys\": [\"example.test\"]}", ": zone_update_keys: ");
    load_fails(f,
               "{" HSM_OK ", \"directories\": {\"update_key\": \"keys\"},"
               " \"zone_update_keys\": {\"*.example.test\": \"good.key\"}}",
               "is not a zone name");
    load_fails(f,
               "{" HSM_OK ", \"directories\": {\"update_key\": \"keys\"},"
               " \"zone_update_keys\": {\"bad zone\": \"good.key\"}}",
               "zone_update_keys[\"bad zone\"]");
    /* One zone spelled two ways is listed twice. */
    load_fails(f,
               "{" HSM_OK ", \"directories\": {\"update_key\": \"keys\"},"
               " \"zone_update_keys\": {\"example.test\": \"good.key\","
               " \"Example.Test.\": \"good.key\"}}",
               "listed twice");
}

static void test_hooks(void **state)
{
    fixture *f = *state;
    char warnings[4096];
    ks_config *cfg = load_ok_capturing(
        f,
        "{" HSM_OK ", \"hooks\": {"
        " \"set_dns_challenge\": \"/usr/local/bin/dns-set {domain} --zone={zone} '{challenge}'\","
        " \"clear_dns_challenge\": null,"
        " \"certificate_installed\": \"systemctl reload nginx # {certificate_name} {{x}}\","
        " \"no_such_hook\": \"/bin/x {bogus}\"}}",
        warnings, sizeof(warnings));
    assert_string_equal(cfg->hooks[KS_HOOK_SET_DNS_CHALLENGE],
                        "/usr/local/bin/dns-set {domain} --zone={zone} '{challenge}'");
    assert_null(cfg->hooks[KS_HOOK_CLEAR_DNS_CHALLENGE]);
    assert_string_equal(cfg->hooks[KS_HOOK_CERTIFICATE_INSTALLED],
                        "systemctl reload nginx # {certificate_name} {{x}}");
    assert_true(ks_config_has_dns(cfg)); /* set_dns_challenge */
    /* An unknown hook is only a warning naming it. */
    if (strstr(warnings, "hooks.no_such_hook") == NULL || strstr(warnings, f->path) == NULL)
        fail_msg("no warning about hooks.no_such_hook: %s", warnings);
    ks_config_free(cfg);

    /* Every acmebot hook has its name. */
    static const char *const names[KS_HOOK_COUNT] = {
        "set_dns_challenge",     "clear_dns_challenge",   "dns_zone_update",
        "set_http_challenge",    "clear_http_challenge",  "private_key_rollover",
        "private_key_installed", "backup_key_installed",  "previous_key_installed",
        "hpkp_header_installed", "certificate_installed", "full_certificate_installed",
        "chain_installed",       "full_key_installed",    "params_installed",
        "sct_installed",         "ocsp_installed"};
    for (int i = 0; i < KS_HOOK_COUNT; i++)
        assert_string_equal(ks_hook_name((ks_hook_id)i), names[i]);
    assert_string_equal(ks_hook_name(KS_HOOK_COUNT), "?");

    /* full_key_installed is accepted with a warning: keysvc writes no full key. */
    cfg = load_ok_capturing(f,
                            "{" HSM_OK ", \"hooks\": {\"full_key_installed\":"
                            " \"/bin/x {full_key_file}\"}}",
                            warnings, sizeof(warnings));
    assert_non_null(cfg->hooks[KS_HOOK_FULL_KEY_INSTALLED]);
    assert_non_null(strstr(warnings, "hooks.full_key_installed"));
    ks_config_free(cfg);
}

static void test_hook_errors(void **state)
{
    fixture *f = *state;
    /* A field the hook does not have: the JSON path, the field and the
     * hook's fields. */
    static const char *const unknown[] = {"hooks.set_dns_challenge", "{challenge_key}",
                                          "{domain} {zone} {challenge}", NULL};
    load_fails_all(f,
                   "{" HSM_OK ", \"hooks\": {\"set_dns_challenge\":"
                   " \"/bin/set {domain} {challenge_key}\"}}",
                   unknown);
    /* Fields are per hook: {zone} is not one of set_http_challenge's. */
    static const char *const per_hook[] = {"hooks.set_http_challenge", "{zone}",
                                           "{domain} {challenge_file}", NULL};
    load_fails_all(f, "{" HSM_OK ", \"hooks\": {\"set_http_challenge\": \"/bin/h {zone}\"}}",
                   per_hook);
    load_fails(f, "{" HSM_OK ", \"hooks\": {\"dns_zone_update\": \"/bin/h {zone\"}}",
               "hooks.dns_zone_update");
    load_fails(f, "{" HSM_OK ", \"hooks\": {\"dns_zone_update\": \"/bin/h zone}\"}}",
               "hooks.dns_zone_update");
    load_fails(f, "{" HSM_OK ", \"hooks\": {\"dns_zone_update\": \"/bin/h '{zone}\"}}",
               "unterminated quote");
    load_fails(f, "{" HSM_OK ", \"hooks\": {\"dns_zone_update\": \"\"}}", "hooks.dns_zone_update");
    load_fails(f, "{" HSM_OK ", \"hooks\": {\"dns_zone_update\": [\"/bin/h\"]}}",
               "hooks.dns_zone_update");
    load_fails(f, "{" HSM_OK ", \"hooks\": [\"dns_zone_update\"]}", ": hooks: ");
}

/* Certificates for directories.http_challenge: alt_names zones, a "@" zone,
 * and one without alt_names. */
#define HTTP_CERTS                                                                                 \
    " \"certificates\": {"                                                                         \
    "  \"example.test\": {\"alt_names\": {\"example.test\": [\"@\", \"www\", \"a.b\", \"*\"]}},"   \
    "  \"cn.test\": {\"common_name\": \"host.cn.test\"},"                                          \
    "  \"apex.test\": null,"                                                                       \
    "  \"at\": {\"common_name\": \"at.test\", \"alt_names\": {\"@\": [\"@\", \"w\"]}}}"

static void expect_http_dir(const ks_config *cfg, const char *fqdn, const char *want)
{
    char *dir = ks_config_http_dir_new(cfg, fqdn);
    if (want == NULL) {
        if (dir != NULL)
            fail_msg("%s: directory %s, expected none", fqdn, dir);
        return;
    }
    if (dir == NULL)
        fail_msg("%s: no directory, expected %s", fqdn, want);
    if (strcmp(dir, want) != 0)
        fail_msg("%s: directory %s, expected %s", fqdn, dir, want);
    free(dir);
}

static void test_http_challenge_directory(void **state)
{
    fixture *f = *state;
    ks_config *cfg = load_ok(f, "{" HSM_OK ", \"directories\": {\"http_challenge\":"
                                " \"/srv/acme/{zone}/{host}/{fqdn}\"},"
                                " \"http_challenges\": {\"www.example.test\": \"/var/www/own\","
                                " \"w.at.test\": null}," HTTP_CERTS "}");
    assert_string_equal(cfg->http_challenge_template, "/srv/acme/{zone}/{host}/{fqdn}");
    /* The zone apex: host ".". */
    expect_http_dir(cfg, "example.test", "/srv/acme/example.test/./example.test");
    /* A host of two labels. */
    expect_http_dir(cfg, "a.b.example.test", "/srv/acme/example.test/a.b/a.b.example.test");
    /* A certificate without alt_names: the last two labels are the zone. */
    expect_http_dir(cfg, "host.cn.test", "/srv/acme/cn.test/host/host.cn.test");
    expect_http_dir(cfg, "apex.test", "/srv/acme/apex.test/./apex.test");
    /* alt_names zone "@": the common name. */
    expect_http_dir(cfg, "at.test", "/srv/acme/at.test/./at.test");
    /* An http_challenges entry wins; null means none (dns-01). */
    expect_http_dir(cfg, "www.example.test", "/var/www/own");
    expect_http_dir(cfg, "w.at.test", NULL);
    /* A name in no certificate is its own zone. */
    expect_http_dir(cfg, "other.test", "/srv/acme/other.test/./other.test");
    ks_config_free(cfg);

    /* A relative template is under the config's directory; {{ }} are braces. */
    cfg = load_ok(f, "{" HSM_OK ", \"directories\": {\"http_challenge\":"
                     " \"web/{{{host}}}.{fqdn}\"}," HTTP_CERTS "}");
    char want[PATH_MAX + 64];
    snprintf(want, sizeof(want), "%s/web/{www}.www.example.test", f->real);
    expect_http_dir(cfg, "www.example.test", want);
    ks_config_free(cfg);

    /* Without a template or an entry there is no directory. */
    cfg = load_ok(f, "{" HSM_OK "," HTTP_CERTS "}");
    expect_http_dir(cfg, "example.test", NULL);
    ks_config_free(cfg);

    static const char *const unknown[] = {"directories.http_challenge", "{name}",
                                          "{zone} {host} {fqdn}", NULL};
    load_fails_all(f, "{" HSM_OK ", \"directories\": {\"http_challenge\": \"/srv/{name}\"}}",
                   unknown);
    load_fails(f, "{" HSM_OK ", \"directories\": {\"http_challenge\": \"/srv/{zone\"}}",
               "directories.http_challenge");
    load_fails(f, "{" HSM_OK ", \"directories\": {\"http_challenge\": \"/srv/a b/{fqdn}\"}}",
               "directories.http_challenge");
    load_fails(f, "{" HSM_OK ", \"directories\": {\"http_challenge\": \"/srv/'{fqdn}'\"}}",
               "directories.http_challenge");
}

/* ks_config_challenge: the first method that applies, in the documented
 * order. */
static void test_challenge_precedence(void **state)
{
    fixture *f = *state;
    write_key_file(f, "keys/a.key", "hmac-sha256");
#define ZONE_KEYS                                                                                  \
    " \"directories\": {\"update_key\": \"keys\"},"                                                \
    " \"zone_update_keys\": {\"a.test\": \"a.key\"}"
    ks_config *cfg =
        load_ok(f, "{" HSM_OK "," ZONE_KEYS ","
                   " \"tls_alpn_challenges\": {\"t.a.test\": \"127.0.0.1:8443\"},"
                   " \"http_challenges\": {\"n.a.test\": null, \"w.a.test\": \"/var/www\","
                   " \"t.a.test\": \"/var/www\"}}");
    assert_int_equal(ks_config_challenge(cfg, "*.a.test"), KS_CHALLENGE_DNS01);
    assert_int_equal(ks_config_challenge(cfg, "t.a.test"), KS_CHALLENGE_TLSALPN01);
    assert_int_equal(ks_config_challenge(cfg, "n.a.test"), KS_CHALLENGE_DNS01);
    assert_int_equal(ks_config_challenge(cfg, "w.a.test"), KS_CHALLENGE_HTTP01);
    assert_int_equal(ks_config_challenge(cfg, "a.test"), KS_CHALLENGE_DNS01);
    ks_config_free(cfg);

    /* No dns-01 method: what would be dns-01 is NONE. */
    cfg = load_ok(f, "{" HSM_OK ", \"http_challenges\": {\"n.a.test\": null,"
                     " \"w.a.test\": \"/var/www\"}}");
    assert_false(ks_config_has_dns(cfg));
    assert_int_equal(ks_config_challenge(cfg, "n.a.test"), KS_CHALLENGE_NONE);
    assert_int_equal(ks_config_challenge(cfg, "*.a.test"), KS_CHALLENGE_NONE);
    assert_int_equal(ks_config_challenge(cfg, "a.test"), KS_CHALLENGE_NONE);
    assert_int_equal(ks_config_challenge(cfg, "w.a.test"), KS_CHALLENGE_HTTP01);
    ks_config_free(cfg);

    /* directories.http_challenge: http-01 for every name but wildcards,
     * null entries and tls-alpn-01 names. */
    cfg = load_ok(f, "{" HSM_OK "," ZONE_KEYS ","
                     " \"directories\": {\"update_key\": \"keys\","
                     " \"http_challenge\": \"/srv/{fqdn}\"},"
                     " \"tls_alpn_challenges\": {\"t.a.test\": \"[::1]:443\"},"
                     " \"http_challenges\": {\"n.a.test\": null}}");
    assert_int_equal(ks_config_challenge(cfg, "a.test"), KS_CHALLENGE_HTTP01);
    assert_int_equal(ks_config_challenge(cfg, "x.y.a.test"), KS_CHALLENGE_HTTP01);
    assert_int_equal(ks_config_challenge(cfg, "*.a.test"), KS_CHALLENGE_DNS01);
    assert_int_equal(ks_config_challenge(cfg, "n.a.test"), KS_CHALLENGE_DNS01);
    assert_int_equal(ks_config_challenge(cfg, "t.a.test"), KS_CHALLENGE_TLSALPN01);
    ks_config_free(cfg);

    /* settings.http_responder: http-01 by the built-in responder. */
    cfg = load_ok(f, "{" HSM_OK ", \"settings\": {\"http_responder\": \"127.0.0.1:8080\"},"
                     " \"http_challenges\": {\"n.a.test\": null}}");
    assert_int_equal(ks_config_challenge(cfg, "a.test"), KS_CHALLENGE_HTTP01);
    assert_int_equal(ks_config_challenge(cfg, "n.a.test"), KS_CHALLENGE_NONE);
    assert_int_equal(ks_config_challenge(cfg, "*.a.test"), KS_CHALLENGE_NONE);
    expect_http_dir(cfg, "a.test", NULL); /* served, not written to a directory */
    ks_config_free(cfg);

    /* Nothing but reload_zone_command: dns-01 by local zone files. */
    cfg = load_ok(f, "{" HSM_OK ", \"settings\": {\"reload_zone_command\": \"rndc reload\"}}");
    assert_true(ks_config_has_dns(cfg));
    assert_int_equal(ks_config_challenge(cfg, "a.test"), KS_CHALLENGE_DNS01);
    assert_int_equal(ks_config_challenge(cfg, "*.a.test"), KS_CHALLENGE_DNS01);
    ks_config_free(cfg);

    /* Nothing but a set_dns_challenge hook, or dns_hooks: dns-01 too. */
    cfg = load_ok(f, "{" HSM_OK ", \"hooks\": {\"set_dns_challenge\": \"/bin/s {domain}\"}}");
    assert_int_equal(ks_config_challenge(cfg, "a.test"), KS_CHALLENGE_DNS01);
    ks_config_free(cfg);
    cfg = load_ok(f, "{" HSM_OK ", \"dns_hooks\": {\"auth\": \"/bin/auth\"}}");
    assert_int_equal(ks_config_challenge(cfg, "a.test"), KS_CHALLENGE_DNS01);
    ks_config_free(cfg);
#undef ZONE_KEYS
}

/* ---- acmebot's other settings and sections (config_acmebot.c) ----------- */

static int count_substr(const char *text, const char *needle)
{
    int n = 0;
    for (const char *at = strstr(text, needle); at != NULL; at = strstr(at + 1, needle))
        n++;
    return n;
}

static void test_acmebot_defaults(void **state)
{
    fixture *f = *state;
    ks_config *cfg = load_ok(f, "{" HSM_OK ", \"certificates\": {\"a.test\": null}}");
    /* acmebot's documented defaults. */
    assert_int_equal(cfg->follower_mode, 0);
    assert_string_equal(cfg->log_level, "debug");
    assert_int_equal(cfg->color_output, 1);
    assert_int_equal(cfg->warning_exit_code, 0);
    assert_int_equal(cfg->dhparam_size, 2048);
    assert_int_equal(cfg->ecparam_curve, NID_secp384r1);
    /* Owners: NULL leaves them as they are (acmebot's root/ssl-cert only
     * ever applied when they existed). */
    assert_null(cfg->file_user);
    assert_null(cfg->file_group);
    assert_null(cfg->log_user);
    assert_null(cfg->log_group);
    assert_int_equal(cfg->hpkp_days, 60);
    assert_int_equal(cfg->pin_subdomains, 1);
    assert_null(cfg->hpkp_report_uri);
    assert_int_equal(cfg->expiration_days, 730);
    assert_int_equal(cfg->auto_rollover, 0);
    assert_int_equal(cfg->ocsp_must_staple, 0);
    assert_int_equal(cfg->n_ocsp_responder_urls, 1);
    assert_string_equal(cfg->ocsp_responder_urls[0], "http://ocsp.int-x3.letsencrypt.org");
    assert_int_equal(cfg->n_ct_submit_logs, 2);
    assert_string_equal(cfg->ct_submit_logs[0], "google_icarus");
    assert_string_equal(cfg->ct_submit_logs[1], "google_pilot");
    assert_int_equal(cfg->max_authorization_attempts, 30);
    assert_int_equal(cfg->authorization_delay, 10);
    assert_int_equal(cfg->cert_poll_time, 30);
    assert_int_equal(cfg->max_ocsp_verify_attempts, 10);
    assert_int_equal(cfg->ocsp_verify_retry_delay, 5);
    assert_int_equal(cfg->min_run_delay, 300);
    assert_int_equal(cfg->max_run_delay, 3600);
    assert_int_equal(cfg->acme_directory_verify_ssl, 1);
    assert_string_equal(cfg->public_suffix_list_url,
                        "https://publicsuffix.org/list/public_suffix_list.dat");
    assert_string_equal(cfg->nsupdate_command, "/usr/bin/nsupdate");
    assert_int_equal(cfg->n_verify, 0);
    assert_int_equal(cfg->n_authorizations, 0);

    /* Directories and file names. */
    assert_string_equal(cfg->dir_pid, "/var/run");
    assert_string_equal(cfg->dir_log, "/var/log/keysvc");
    assert_string_equal(cfg->dir_resource, "/var/local/keysvc");
    assert_string_equal(cfg->dir_backup_key, "/etc/ssl/private");
    assert_string_equal(cfg->dir_full_key, "/etc/ssl/private");
    assert_string_equal(cfg->dir_full_certificate, "/etc/ssl/certs");
    assert_string_equal(cfg->dir_param, "/etc/ssl/params");
    assert_string_equal(cfg->dir_hpkp, "/etc/ssl/hpkp");
    assert_string_equal(cfg->dir_ocsp, "/etc/ssl/ocsp");
    assert_string_equal(cfg->dir_sct, "/etc/ssl/scts/{name}/{key_type}");
    assert_string_equal(cfg->dir_archive, "/etc/ssl/archive");
    assert_null(cfg->dir_temp);
    assert_null(cfg->dir_previous_key);
    assert_string_equal(cfg->fn_log, "keysvc.log");
    assert_string_equal(cfg->fn_backup_key, "{name}_backup{suffix}.key");
    assert_string_equal(cfg->fn_previous_key, "{name}_previous{suffix}.key");
    assert_string_equal(cfg->fn_full_key, "{name}_full{suffix}.key");
    assert_string_equal(cfg->fn_full_certificate, "{name}+root{suffix}.pem");
    assert_string_equal(cfg->fn_param, "{name}_param.pem");
    assert_string_equal(cfg->fn_hpkp, "{name}.{server}");
    assert_string_equal(cfg->fn_ocsp, "{name}{suffix}.ocsp");
    assert_string_equal(cfg->fn_sct, "{ct_log_name}.sct");

    /* acmebot's services table, HPKP header templates, and CT logs. */
    assert_int_equal(cfg->n_services, 12);
    int nginx = ks_config_service_index(cfg, "nginx");
    assert_true(nginx >= 0);
    assert_string_equal(cfg->services[nginx].command, "systemctl reload nginx");
    assert_string_equal(cfg->services[ks_config_service_index(cfg, "synapse")].command,
                        "systemctl restart matrix-synapse");
    assert_int_equal(ks_config_service_index(cfg, "nope"), -1);
    assert_int_equal(cfg->n_hpkp_headers, 2);
    assert_string_equal(cfg->hpkp_headers[0].server, "apache");
    assert_string_equal(cfg->hpkp_headers[0].tmpl, "Header always set Public-Key-Pins \"{header}\"\n");
    assert_string_equal(cfg->hpkp_headers[1].server, "nginx");
    assert_string_equal(cfg->hpkp_headers[1].tmpl,
                        "add_header Public-Key-Pins \"{header}\" always;\n");
    assert_int_equal(cfg->n_ct_logs, 2);
    assert_string_equal(cfg->ct_logs[0].name, "google_pilot");
    assert_string_equal(cfg->ct_logs[0].url, "https://ct.googleapis.com/pilot");
    assert_int_equal(cfg->ct_logs[0].key_len, 91); /* a P-256 SubjectPublicKeyInfo */
    /* pLkJkLQY...: the log ID acmebot's README gives, SHA-256 of the key */
    static const unsigned char pilot_id[4] = {0xa4, 0xb9, 0x09, 0x90};
    assert_memory_equal(cfg->ct_logs[0].id, pilot_id, 4);
    assert_int_equal(cfg->ct_logs[0].start, 0);
    assert_int_equal(cfg->ct_logs[0].end, 0);

    /* A certificate and its key take the settings' values. */
    const ks_cert_config *c = &cfg->certs[0];
    const ks_key_config *k = &cfg->keys[0];
    assert_int_equal(k->expiration_days, 730);
    assert_int_equal(k->auto_rollover, 0);
    assert_int_equal(k->hpkp_days, 60);
    assert_int_equal(k->pin_subdomains, 1);
    assert_null(k->hpkp_report_uri);
    assert_int_equal(c->n_services, 0);
    assert_int_equal(c->dhparam_size, 2048);
    assert_int_equal(c->ecparam_curve, NID_secp384r1);
    assert_int_equal(c->ocsp_must_staple, 0);
    assert_int_equal(c->n_ocsp_responder_urls, 1);
    assert_string_equal(c->ocsp_responder_urls[0], "http://ocsp.int-x3.letsencrypt.org");
    assert_int_equal(c->n_ct_logs, 2); /* google_icarus and google_pilot */
    assert_int_equal(c->n_verify, 0);
    assert_int_equal(c->n_tlsa_records, 0);
    ks_config_free(cfg);
}

static void test_acmebot_settings(void **state)
{
    fixture *f = *state;
    ks_config *cfg = load_ok(
        f, "{" HSM_OK ", \"settings\": {\"slave_mode\": true, \"log_level\": \"detail\","
           " \"color_output\": false, \"warning_exit_code\": true, \"dhparam_size\": 4096,"
           " \"ecparam_curve\": [\"secp256k1\", \"secp521r1\", \"secp384r1\"],"
           " \"file_user\": \"certs\", \"file_group\": \"ssl-cert\", \"log_user\": \"logs\","
           " \"log_group\": \"adm\", \"hpkp_days\": null, \"pin_subdomains\": false,"
           " \"hpkp_report_uri\": \"https://report.example.test/hpkp\","
           " \"expiration_days\": 0, \"auto_rollover\": true, \"ocsp_must_staple\": true,"
           " \"ocsp_responder_urls\": \"http://ocsp.example.test\","
           " \"ct_submit_logs\": null, \"max_authorization_attempts\": 5,"
           " \"authorization_delay\": 0, \"cert_poll_time\": 60,"
           " \"max_ocsp_verify_attempts\": 2, \"ocsp_verify_retry_delay\": 1,"
           " \"min_run_delay\": 10, \"max_run_delay\": 10, \"acme_directory_verify_ssl\": false,"
           " \"public_suffix_list_url\": null, \"nsupdate_command\": null}}");
    assert_int_equal(cfg->follower_mode, 1); /* slave_mode, the old name */
    assert_string_equal(cfg->log_level, "detail");
    assert_int_equal(cfg->color_output, 0);
    assert_int_equal(cfg->warning_exit_code, 1);
    assert_int_equal(cfg->dhparam_size, 4096);
    /* The first curve of the list keysvc writes; secp256k1 is skipped. */
    assert_int_equal(cfg->ecparam_curve, NID_secp521r1);
    assert_string_equal(cfg->file_user, "certs");
    assert_string_equal(cfg->file_group, "ssl-cert");
    assert_string_equal(cfg->log_user, "logs");
    assert_string_equal(cfg->log_group, "adm");
    assert_int_equal(cfg->hpkp_days, 0);
    assert_int_equal(cfg->pin_subdomains, 0);
    assert_string_equal(cfg->hpkp_report_uri, "https://report.example.test/hpkp");
    assert_int_equal(cfg->expiration_days, 0);
    assert_int_equal(cfg->auto_rollover, 1);
    assert_int_equal(cfg->ocsp_must_staple, 1);
    assert_int_equal(cfg->n_ocsp_responder_urls, 1);
    assert_string_equal(cfg->ocsp_responder_urls[0], "http://ocsp.example.test");
    assert_int_equal(cfg->n_ct_submit_logs, 0);
    assert_int_equal(cfg->max_authorization_attempts, 5);
    assert_int_equal(cfg->authorization_delay, 0);
    assert_int_equal(cfg->cert_poll_time, 60);
    assert_int_equal(cfg->max_ocsp_verify_attempts, 2);
    assert_int_equal(cfg->ocsp_verify_retry_delay, 1);
    assert_int_equal(cfg->min_run_delay, 10);
    assert_int_equal(cfg->max_run_delay, 10);
    assert_int_equal(cfg->acme_directory_verify_ssl, 0);
    assert_null(cfg->public_suffix_list_url);
    assert_null(cfg->nsupdate_command);
    ks_config_free(cfg);

    /* follower_mode itself; null log_level (no log file); no DH/EC params. */
    cfg = load_ok(f, "{" HSM_OK ", \"settings\": {\"follower_mode\": true, \"slave_mode\": true,"
                     " \"log_level\": null, \"dhparam_size\": null, \"ecparam_curve\": null}}");
    assert_int_equal(cfg->follower_mode, 1);
    assert_null(cfg->log_level);
    assert_int_equal(cfg->dhparam_size, 0);
    assert_int_equal(cfg->ecparam_curve, 0);
    ks_config_free(cfg);
    cfg = load_ok(f, "{" HSM_OK ", \"settings\": {\"dhparam_size\": 0,"
                     " \"ecparam_curve\": \"secp256r1\"}}");
    assert_int_equal(cfg->dhparam_size, 0);
    assert_int_equal(cfg->ecparam_curve, NID_X9_62_prime256v1);
    ks_config_free(cfg);
}

static void test_acmebot_setting_errors(void **state)
{
    fixture *f = *state;
    static const char *const dh[] = {"settings.dhparam_size", "RFC 7919", "2048, 3072, 4096, 6144",
                                     NULL};
    load_fails_all(f, "{" HSM_OK ", \"settings\": {\"dhparam_size\": 1024}}", dh);
    load_fails_all(f, "{" HSM_OK ", \"settings\": {\"dhparam_size\": 2500}}", dh);
    load_fails(f, "{" HSM_OK ", \"settings\": {\"dhparam_size\": -2048}}",
               "settings.dhparam_size");
    load_fails(f, "{" HSM_OK ", \"settings\": {\"dhparam_size\": \"2048\"}}",
               "settings.dhparam_size: expected an integer");
    load_fails(f, "{" HSM_OK ", \"settings\": {\"ecparam_curve\": \"secp256k1\"}}",
               "settings.ecparam_curve");
    load_fails(f, "{" HSM_OK ", \"settings\": {\"ecparam_curve\": [\"secp256k1\"]}}",
               "settings.ecparam_curve: lists no curve keysvc writes");
    load_fails(f, "{" HSM_OK ", \"settings\": {\"ecparam_curve\": [\"secp384r1\", \"bogus\"]}}",
               "settings.ecparam_curve[1]");
    load_fails(f, "{" HSM_OK ", \"settings\": {\"ecparam_curve\": 384}}",
               "settings.ecparam_curve");
    load_fails(f, "{" HSM_OK ", \"settings\": {\"log_level\": \"loud\"}}", "settings.log_level");
    load_fails(f, "{" HSM_OK ", \"settings\": {\"color_output\": 1}}",
               "settings.color_output: expected true or false");
    load_fails(f, "{" HSM_OK ", \"settings\": {\"follower_mode\": true, \"slave_mode\": false}}",
               "settings.slave_mode");
    load_fails(f, "{" HSM_OK ", \"settings\": {\"file_user\": 0}}", "settings.file_user");
    load_fails(f, "{" HSM_OK ", \"settings\": {\"hpkp_days\": -1}}", "settings.hpkp_days");
    load_fails(f, "{" HSM_OK ", \"settings\": {\"expiration_days\": true}}",
               "settings.expiration_days");
    load_fails(f, "{" HSM_OK ", \"settings\": {\"hpkp_report_uri\": \"mailto:x@y\"}}",
               "settings.hpkp_report_uri");
    load_fails(f, "{" HSM_OK ", \"settings\": {\"ocsp_responder_urls\": [\"http://a\", \"ftp://b\"]}}",
               "settings.ocsp_responder_urls[1]");
    load_fails(f, "{" HSM_OK ", \"settings\": {\"ocsp_responder_urls\": 5}}",
               "settings.ocsp_responder_urls");
    load_fails(f, "{" HSM_OK ", \"settings\": {\"max_authorization_attempts\": 0}}",
               "settings.max_authorization_attempts");
    load_fails(f, "{" HSM_OK ", \"settings\": {\"cert_poll_time\": 0}}", "settings.cert_poll_time");
    load_fails(f, "{" HSM_OK ", \"settings\": {\"authorization_delay\": null}}",
               "settings.authorization_delay");
    static const char *const delays[] = {"settings.min_run_delay", "600", "settings.max_run_delay",
                                         NULL};
    load_fails_all(f, "{" HSM_OK ", \"settings\": {\"min_run_delay\": 600, \"max_run_delay\": 60}}",
                   delays);
    /* The default max_run_delay (3600) counts too. */
    load_fails(f, "{" HSM_OK ", \"settings\": {\"min_run_delay\": 4000}}", "settings.min_run_delay");
    load_fails(f, "{" HSM_OK ", \"settings\": {\"nsupdate_command\": \"nsupdate 'x\"}}",
               "settings.nsupdate_command");
    load_fails(f, "{" HSM_OK ", \"settings\": {\"public_suffix_list_url\": \"psl.dat\"}}",
               "settings.public_suffix_list_url");
    load_fails(f, "{" HSM_OK ", \"settings\": {\"key_passphrase\": 5}}", "settings.key_passphrase");
    load_fails(f, "{" HSM_OK ", \"settings\": {\"key_cipher\": false}}", "settings.key_cipher");
    load_fails(f, "{" HSM_OK ", \"settings\": {\"key_provided\": \"no\"}}", "settings.key_provided");
}

static void test_directories_and_file_names(void **state)
{
    fixture *f = *state;
    ks_config *cfg = load_ok(
        f, "{" HSM_OK ", \"directories\": {\"sct\": \"scts/{name}/{{x}}/{key_type}\","
           " \"hpkp\": null, \"temp\": \"tmp\", \"ocsp\": \"/srv/ocsp/\"},"
           " \"file_names\": {\"hpkp\": \"{name}-{server}.conf\", \"sct\": \"{ct_log_name}{suffix}.sct\","
           " \"log\": \"k.log\"}}");
    assert_under_base(f, cfg->dir_sct, "scts/{name}/{{x}}/{key_type}");
    assert_null(cfg->dir_hpkp);
    assert_under_base(f, cfg->dir_temp, "tmp");
    assert_string_equal(cfg->dir_ocsp, "/srv/ocsp");
    assert_string_equal(cfg->fn_hpkp, "{name}-{server}.conf");
    assert_string_equal(cfg->fn_log, "k.log");

    ks_err err = {{0}};
    char want[PATH_MAX + 128];
    ks_path_fields sct = {"*.w.test", KS_KEY_ECDSA, NULL, "google_pilot"};
    char *p = ks_config_path_new(cfg, cfg->dir_sct, cfg->fn_sct, &sct, &err);
    if (p == NULL)
        fail_msg("%s", err.msg);
    /* Fields in the directory, {{ }} as braces, '*' as '_' in the file name only. */
    snprintf(want, sizeof(want), "%s/scts/*.w.test/{x}/ecdsa/google_pilot.ecdsa.sct", f->real);
    assert_string_equal(p, want);
    free(p);
    ks_path_fields hpkp = {"k", -1, "nginx", NULL};
    p = ks_config_path_new(cfg, "/etc/ssl/hpkp", cfg->fn_hpkp, &hpkp, &err);
    assert_non_null(p);
    assert_string_equal(p, "/etc/ssl/hpkp/k-nginx.conf");
    free(p);
    /* A field without a value is an error. */
    assert_null(ks_config_path_new(cfg, "/x", "{server}.pem", &sct, &err));
    assert_non_null(strstr(err.msg, "{server}"));
    ks_config_free(cfg);

    static const char *const unknown[] = {"directories.sct", "{bogus}",
                                          "{name} {key_type} {suffix} {ct_log_name}", NULL};
    load_fails_all(f, "{" HSM_OK ", \"directories\": {\"sct\": \"/s/{bogus}\"}}", unknown);
    load_fails(f, "{" HSM_OK ", \"directories\": {\"pid\": \"/run/{name}\"}}",
               "directories.pid: unknown field {name} (fields: none)");
    load_fails(f, "{" HSM_OK ", \"directories\": {\"param\": \"/p/{name\"}}", "directories.param");
    load_fails(f, "{" HSM_OK ", \"directories\": {\"archive\": 7}}", "directories.archive");
    static const char *const server[] = {"file_names.ocsp", "{server}", NULL};
    load_fails_all(f, "{" HSM_OK ", \"file_names\": {\"ocsp\": \"{server}.ocsp\"}}", server);
    load_fails(f, "{" HSM_OK ", \"file_names\": {\"param\": \"{name}{suffix}.pem\"}}",
               "file_names.param");
    load_fails(f, "{" HSM_OK ", \"file_names\": {\"backup_key\": \"keys/{name}.key\"}}",
               "file_names.backup_key");
    load_fails(f, "{" HSM_OK ", \"file_names\": {\"sct\": null}}", "file_names.sct");
    /* keysvc's earlier file names are checked the same way now. */
    load_fails(f, "{" HSM_OK ", \"file_names\": {\"certificate\": \"{nam}.pem\"}}",
               "file_names.certificate");
}

static void test_services(void **state)
{
    fixture *f = *state;
    ks_config *cfg = load_ok(
        f, "{" HSM_OK ", \"settings\": {\"services\": [\"nginx\"]},"
           " \"services\": {\"nginx\": \"/usr/sbin/nginx -s reload\", \"znc\": null,"
           " \"own\": \"/usr/local/bin/reload 'my service'\"},"
           " \"certificates\": {\"a.test\": {\"services\": [\"own\", \"dovecot\", \"own\"]},"
           " \"b.test\": null, \"c.test\": {\"services\": \"apache\"},"
           " \"d.test\": {\"services\": null}}}");
    /* Merged over acmebot's table: replaced, removed, added. */
    assert_int_equal(cfg->n_services, 12);
    assert_string_equal(cfg->services[ks_config_service_index(cfg, "nginx")].command,
                        "/usr/sbin/nginx -s reload");
    assert_int_equal(ks_config_service_index(cfg, "znc"), -1);
    int own = ks_config_service_index(cfg, "own");
    assert_true(own >= 0);
    assert_string_equal(cfg->services[own].command, "/usr/local/bin/reload 'my service'");
    /* A certificate's own list, once each; else settings.services. */
    const ks_cert_config *a = &cfg->certs[0];
    assert_int_equal(a->n_services, 2);
    assert_int_equal(a->services[0], (size_t)own);
    assert_int_equal(a->services[1], (size_t)ks_config_service_index(cfg, "dovecot"));
    assert_int_equal(cfg->certs[1].n_services, 1);
    assert_int_equal(cfg->certs[1].services[0], (size_t)ks_config_service_index(cfg, "nginx"));
    assert_int_equal(cfg->certs[2].n_services, 1);
    assert_int_equal(cfg->certs[2].services[0], (size_t)ks_config_service_index(cfg, "apache"));
    assert_int_equal(cfg->certs[3].n_services, 0);
    ks_config_free(cfg);

    /* Unknown references: the certificate's path, or the settings'. */
    static const char *const unknown[] = {"certificates[\"a.test\"].services[1]", "\"nope\"",
                                          NULL};
    load_fails_all(f, "{" HSM_OK ", \"certificates\": {\"a.test\": {\"services\": [\"nginx\","
                      " \"nope\"]}}}", unknown);
    load_fails(f, "{" HSM_OK ", \"settings\": {\"services\": [\"apache\", \"gone\"]}}",
               "settings.services[1]");
    /* A removed default is gone for references too. */
    load_fails(f, "{" HSM_OK ", \"services\": {\"znc\": null},"
                  " \"certificates\": {\"a.test\": {\"services\": \"znc\"}}}",
               "certificates[\"a.test\"].services");
    load_fails(f, "{" HSM_OK ", \"services\": {\"x\": \"reload 'x\"}}", "services.x");
    load_fails(f, "{" HSM_OK ", \"services\": {\"x\": [\"systemctl\"]}}", "services.x");
    load_fails(f, "{" HSM_OK ", \"services\": {\"a/b\": \"x\"}}", "services[\"a/b\"]");
    load_fails(f, "{" HSM_OK ", \"services\": [\"nginx\"]}", ": services: expected an object");
    load_fails(f, "{" HSM_OK ", \"certificates\": {\"a.test\": {\"services\": [5]}}}",
               "certificates[\"a.test\"].services[0]");
}

static void test_hpkp_headers(void **state)
{
    fixture *f = *state;
    ks_config *cfg = load_ok(
        f, "{" HSM_OK ", \"hpkp_headers\": {\"apache\": null,"
           " \"nginx\": \"more_set_headers \\\"Public-Key-Pins: {header}\\\"; # {key_name} {{}}\\n\","
           " \"caddy\": \"header Public-Key-Pins \\\"{header}\\\" # {server} {name}\\n\"}}");
    assert_int_equal(cfg->n_hpkp_headers, 2);
    assert_string_equal(cfg->hpkp_headers[0].server, "nginx");
    assert_string_equal(cfg->hpkp_headers[0].tmpl,
                        "more_set_headers \"Public-Key-Pins: {header}\"; # {key_name} {{}}\n");
    assert_string_equal(cfg->hpkp_headers[1].server, "caddy");
    ks_config_free(cfg);

    static const char *const unknown[] = {"hpkp_headers.nginx", "{pins}",
                                          "{header} {key_name} {name} {server}", NULL};
    load_fails_all(f, "{" HSM_OK ", \"hpkp_headers\": {\"nginx\": \"add_header X {pins};\"}}",
                   unknown);
    load_fails(f, "{" HSM_OK ", \"hpkp_headers\": {\"nginx\": \"add_header X {header;\"}}",
               "hpkp_headers.nginx");
    load_fails(f, "{" HSM_OK ", \"hpkp_headers\": {\"nginx\": \"a } b\"}}", "hpkp_headers.nginx");
    load_fails(f, "{" HSM_OK ", \"hpkp_headers\": {\"nginx\": 1}}", "hpkp_headers.nginx");
    load_fails(f, "{" HSM_OK ", \"hpkp_headers\": {\"ng inx\": \"{header}\"}}",
               "hpkp_headers[\"ng inx\"]");
}

/* A P-256 public key that is nobody's log, and its SHA-256. */
#define CT_KEY                                                                                     \
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE6Tx2p1yKY4015NyIYvdrk36es0uAc1zA4PQ+TGRY+3ZjUTIYY9Wyu+3q" \
    "/147JG4vNVKLtDWarZwVqGkg6lAYzA=="
#define CT_KEY_ID "sh4FzIuizYogTodm+Su5iiUgZ2va+nDnsklTLe+LkF4="

static void test_ct_logs(void **state)
{
    fixture *f = *state;
    ks_config *cfg = load_ok(
        f, "{" HSM_OK ", \"settings\": {\"ct_submit_logs\": [\"sharded\", \"google_pilot\"]},"
           " \"ct_logs\": {\"google_icarus\": null,"
           " \"google_pilot\": {\"url\": \"https://ct.googleapis.com/pilot\","
           " \"id\": \"pLkJkLQYWBSHuxOizGdwCjw1mAT5G9+443fNDsgN3BA=\"},"
           " \"sharded\": [{\"url\": \"https://ct.example.test/2024/\", \"key\": \"" CT_KEY "\","
           " \"log_id\": \"" CT_KEY_ID "\", \"start\": \"2024-01-01T00:00:00Z\","
           " \"end\": \"2025-01-01T00:00Z\"},"
           " {\"url\": \"http://ct.example.test/2025/\", \"key\": \"" CT_KEY "\"}]},"
           " \"certificates\": {\"a.test\": null, \"b.test\": {\"ct_submit_logs\": \"google_pilot\"},"
           " \"c.test\": {\"ct_submit_logs\": []}}}");
    /* google_icarus removed; google_pilot replaced by its README form (ID only). */
    assert_int_equal(cfg->n_ct_logs, 3);
    const ks_ct_log *pilot = &cfg->ct_logs[0];
    assert_string_equal(pilot->name, "google_pilot");
    assert_null(pilot->key_der);
    assert_int_equal(pilot->key_len, 0);
    assert_int_equal(pilot->id[0], 0xa4);
    assert_int_equal(pilot->id[31], 0x10);
    const ks_ct_log *s0 = &cfg->ct_logs[1], *s1 = &cfg->ct_logs[2];
    assert_string_equal(s0->name, "sharded");
    assert_string_equal(s1->name, "sharded");
    assert_non_null(s0->key_der);
    assert_int_equal(s0->key_len, 91);
    assert_int_equal(s0->id[0], 0xb2); /* "sh4F..." */
    assert_memory_equal(s0->id, s1->id, 32);
    assert_int_equal(s0->start, 1704067200); /* 2024-01-01T00:00:00Z */
    assert_int_equal(s0->end, 1735689600);   /* 2025-01-01T00:00Z */
    assert_int_equal(s1->start, 0);
    assert_string_equal(s1->url, "http://ct.example.test/2025/");
    /* Every shard of each named log. */
    const ks_cert_config *a = &cfg->certs[0];
    assert_int_equal(a->n_ct_logs, 3);
    assert_int_equal(a->ct_logs[0], 1);
    assert_int_equal(a->ct_logs[1], 2);
    assert_int_equal(a->ct_logs[2], 0);
    assert_int_equal(cfg->certs[1].n_ct_logs, 1);
    assert_int_equal(cfg->certs[1].ct_logs[0], 0);
    assert_int_equal(cfg->certs[2].n_ct_logs, 0);
    ks_config_free(cfg);

    /* Unknown log names: at the certificate's path, or the settings'. */
    static const char *const unknown[] = {"certificates[\"a.test\"].ct_submit_logs[1]",
                                          "\"google_argon\"", NULL};
    load_fails_all(f, "{" HSM_OK ", \"certificates\": {\"a.test\": {\"ct_submit_logs\":"
                      " [\"google_pilot\", \"google_argon\"]}}}", unknown);
    load_fails(f, "{" HSM_OK ", \"settings\": {\"ct_submit_logs\": [\"nope\"]}}",
               "settings.ct_submit_logs[0]");
    /* Removing a default that settings still submits to. */
    load_fails(f, "{" HSM_OK ", \"ct_logs\": {\"google_icarus\": null}}",
               "settings.ct_submit_logs[0]");
    load_fails(f, "{" HSM_OK ", \"ct_logs\": {\"x\": {\"url\": \"https://x.test/\","
                  " \"key\": \"bm90IGEga2V5\"}}}", "ct_logs.x.key");
    load_fails(f, "{" HSM_OK ", \"ct_logs\": {\"x\": {\"url\": \"https://x.test/\","
                  " \"key\": \"not base64!\"}}}", "ct_logs.x.key");
    static const char *const mismatch[] = {"ct_logs.x.log_id", "SHA-256", NULL};
    load_fails_all(f, "{" HSM_OK ", \"ct_logs\": {\"x\": {\"url\": \"https://x.test/\","
                      " \"key\": \"" CT_KEY "\","
                      " \"log_id\": \"pLkJkLQYWBSHuxOizGdwCjw1mAT5G9+443fNDsgN3BA=\"}}}",
                   mismatch);
    load_fails(f, "{" HSM_OK ", \"ct_logs\": {\"x\": {\"url\": \"https://x.test/\", \"id\": \"AAAA\"}}}",
               "ct_logs.x.id");
    load_fails(f, "{" HSM_OK ", \"ct_logs\": {\"x\": {\"url\": \"https://x.test/\"}}}",
               "ct_logs.x: give the log's \"key\"");
    load_fails(f, "{" HSM_OK ", \"ct_logs\": {\"x\": {\"key\": \"" CT_KEY "\"}}}",
               "ct_logs.x: \"url\" is required");
    load_fails(f, "{" HSM_OK ", \"ct_logs\": {\"x\": {\"url\": \"ftp://x.test/\", \"key\": \"" CT_KEY "\"}}}",
               "ct_logs.x.url");
    load_fails(f, "{" HSM_OK ", \"ct_logs\": {\"x\": [{\"url\": \"https://x.test/\","
                  " \"key\": \"" CT_KEY "\", \"start\": \"2024-02-30T00:00:00Z\"}]}}",
               "ct_logs.x[0].start");
    load_fails(f, "{" HSM_OK ", \"ct_logs\": {\"x\": [{\"url\": \"https://x.test/\","
                  " \"key\": \"" CT_KEY "\", \"start\": \"2024-02-01T00:00:00Z\","
                  " \"end\": \"2024-01-01T00:00:00Z\"}]}}",
               "ct_logs.x[0]: \"end\" must be after");
    load_fails(f, "{" HSM_OK ", \"ct_logs\": {\"x\": []}}", "ct_logs.x");
    load_fails(f, "{" HSM_OK ", \"ct_logs\": {\"x\": \"https://x.test/\"}}", "ct_logs.x");
}

static void test_authorizations(void **state)
{
    fixture *f = *state;
    ks_config *cfg = load_ok(f, "{" HSM_OK ", \"authorizations\": {\"Example.Test\": [\"@\", \"WWW\","
                                " \"*\"], \"other.test\": \"mail\"}}");
    assert_int_equal(cfg->n_authorizations, 2);
    assert_string_equal(cfg->authorizations[0].name, "example.test");
    assert_int_equal(cfg->authorizations[0].n_fqdns, 3);
    assert_string_equal(cfg->authorizations[0].fqdns[0], "example.test");
    assert_string_equal(cfg->authorizations[0].fqdns[1], "www.example.test");
    assert_string_equal(cfg->authorizations[0].fqdns[2], "*.example.test");
    assert_string_equal(cfg->authorizations[1].name, "other.test");
    assert_int_equal(cfg->authorizations[1].n_fqdns, 1);
    assert_string_equal(cfg->authorizations[1].fqdns[0], "mail.other.test");
    ks_config_free(cfg);

    load_fails(f, "{" HSM_OK ", \"authorizations\": {\"@\": [\"www\"]}}",
               "authorizations[\"@\"]");
    load_fails(f, "{" HSM_OK ", \"authorizations\": {\"a.test\": [\"@\", \"bad_host\"]}}",
               "authorizations[\"a.test\"][1]");
    load_fails(f, "{" HSM_OK ", \"authorizations\": {\"a.test\": [\"www\", \"WWW\"]}}",
               "listed twice");
    load_fails(f, "{" HSM_OK ", \"authorizations\": {\"a.test\": 5}}",
               "authorizations[\"a.test\"]: expected a list");
    load_fails(f, "{" HSM_OK ", \"authorizations\": [\"a.test\"]}", ": authorizations: ");
}

/* Loads with standard error captured at the info level (notices). */
static ks_config *load_ok_verbose(const fixture *f, const char *config, char *text, size_t cap)
{
    ks_log_set_level(KS_LOG_INFO);
    ks_config *cfg = load_ok_capturing(f, config, text, cap);
    ks_log_set_level(KS_LOG_WARN);
    return cfg;
}

static void test_key_settings(void **state)
{
    fixture *f = *state;
    char text[8192];
    ks_config *cfg = load_ok_verbose(
        f, "{" HSM_OK ", \"settings\": {\"hpkp_days\": 10, \"key_cipher\": \"aes256\","
           " \"hpkp_report_uri\": \"https://r.test/\"},"
           " \"certificates\": {\"a.test\": {\"expiration_days\": null, \"auto_rollover\": true,"
           " \"hpkp_days\": 90, \"pin_subdomains\": false, \"hpkp_report_uri\": null,"
           " \"key_passphrase\": true}, \"b.test\": null},"
           " \"private_keys\": {\"shared\": {\"expiration_days\": 365, \"key_provided\": true,"
           " \"key_passphrase\": \"secret\","
           " \"certificates\": {\"c.test\": null, \"d.test\": null}}}}",
        text, sizeof(text));
    assert_int_equal(cfg->n_keys, 3);
    const ks_key_config *a = &cfg->keys[0], *b = &cfg->keys[1], *shared = &cfg->keys[2];
    assert_string_equal(a->name, "a.test");
    assert_int_equal(a->expiration_days, 0);
    assert_int_equal(a->auto_rollover, 1);
    assert_int_equal(a->hpkp_days, 90);
    assert_int_equal(a->pin_subdomains, 0);
    assert_null(a->hpkp_report_uri);
    /* A key without its own: the settings'. */
    assert_int_equal(b->expiration_days, 730);
    assert_int_equal(b->hpkp_days, 10);
    assert_int_equal(b->pin_subdomains, 1);
    assert_string_equal(b->hpkp_report_uri, "https://r.test/");
    assert_string_equal(shared->name, "shared");
    assert_int_equal(shared->expiration_days, 365);
    assert_int_equal(shared->hpkp_days, 10);
    /* One notice per load, however many keys name a cipher or passphrase. */
    assert_int_equal(count_substr(text, "key_cipher/key_passphrase are ignored"), 1);
    assert_non_null(strstr(text, "keys are generated in the token and never written to disk; "
                                 "the token PIN protects them"));
    assert_int_equal(count_substr(text, "key_provided is ignored"), 1);
    assert_non_null(strstr(text, "private_keys.shared.key_provided"));
    ks_config_free(cfg);

    /* Key settings belong to the key: in a private_keys certificate they
     * are unknown keys (warned about, not applied). */
    cfg = load_ok_capturing(f, "{" HSM_OK ", \"private_keys\": {\"k\": {\"certificates\":"
                               " {\"c.test\": {\"hpkp_days\": 5}}}}}", text, sizeof(text));
    assert_int_equal(cfg->keys[0].hpkp_days, 60);
    assert_non_null(strstr(text, "private_keys.k.certificates[\"c.test\"].hpkp_days: unknown key"));
    ks_config_free(cfg);

    load_fails(f, "{" HSM_OK ", \"certificates\": {\"a.test\": {\"hpkp_days\": \"60\"}}}",
               "certificates[\"a.test\"].hpkp_days");
    load_fails(f, "{" HSM_OK ", \"private_keys\": {\"k\": {\"auto_rollover\": 1,"
                  " \"certificates\": {\"c.test\": null}}}}", "private_keys.k.auto_rollover");
    load_fails(f, "{" HSM_OK ", \"certificates\": {\"a.test\": {\"hpkp_report_uri\": \"r\"}}}",
               "certificates[\"a.test\"].hpkp_report_uri");
}

static void test_cert_settings(void **state)
{
    fixture *f = *state;
    ks_config *cfg = load_ok(
        f, "{" HSM_OK ", \"settings\": {\"dhparam_size\": 3072, \"ocsp_must_staple\": true,"
           " \"ocsp_responder_urls\": [\"http://o1.test\", \"https://o2.test/x\"]},"
           " \"certificates\": {\"a.test\": {\"dhparam_size\": 8192, \"ecparam_curve\": \"secp521r1\","
           " \"ocsp_must_staple\": false, \"ocsp_responder_urls\": null},"
           " \"b.test\": {\"dhparam_size\": null, \"ecparam_curve\": null}, \"c.test\": null}}");
    const ks_cert_config *a = &cfg->certs[0], *b = &cfg->certs[1], *c = &cfg->certs[2];
    assert_int_equal(a->dhparam_size, 8192);
    assert_int_equal(a->ecparam_curve, NID_secp521r1);
    assert_int_equal(a->ocsp_must_staple, 0);
    assert_int_equal(a->n_ocsp_responder_urls, 0);
    assert_int_equal(b->dhparam_size, 0);
    assert_int_equal(b->ecparam_curve, 0);
    assert_int_equal(c->dhparam_size, 3072);
    assert_int_equal(c->ecparam_curve, NID_secp384r1);
    assert_int_equal(c->ocsp_must_staple, 1);
    assert_int_equal(c->n_ocsp_responder_urls, 2);
    assert_string_equal(c->ocsp_responder_urls[1], "https://o2.test/x");
    ks_config_free(cfg);

    load_fails(f, "{" HSM_OK ", \"certificates\": {\"a.test\": {\"dhparam_size\": 1024}}}",
               "certificates[\"a.test\"].dhparam_size");
    load_fails(f, "{" HSM_OK ", \"certificates\": {\"a.test\": {\"ecparam_curve\": \"p-256\"}}}",
               "certificates[\"a.test\"].ecparam_curve");
    load_fails(f, "{" HSM_OK ", \"certificates\": {\"a.test\": {\"ocsp_must_staple\": null}}}",
               "certificates[\"a.test\"].ocsp_must_staple");
    load_fails(f, "{" HSM_OK ", \"private_keys\": {\"k\": {\"certificates\": {\"c.test\":"
                  " {\"ocsp_responder_urls\": [\"x\"]}}}}}",
               "private_keys.k.certificates[\"c.test\"].ocsp_responder_urls[0]");
}

static void test_verify(void **state)
{
    fixture *f = *state;
    ks_config *cfg = load_ok(
        f, "{" HSM_OK ", \"settings\": {\"verify\": [443, {\"port\": 25, \"starttls\": \"smtp\","
           " \"hosts\": [\"mail.a.test\"], \"key_types\": \"rsa\"}]},"
           " \"certificates\": {"
           " \"a.test\": {\"alt_names\": {\"a.test\": [\"@\", \"*\", \"mail\"]}},"
           " \"b.test\": {\"key_types\": [\"ecdsa\"]},"
           " \"c.test\": {\"alt_names\": {\"c.test\": [\"@\", \"smtp\"]}, \"verify\": ["
           " {\"port\": 443, \"protocol\": \"http\"},"
           " {\"port\": \"587\", \"starttls\": \"smtp\", \"hosts\": \"SMTP.c.test\", \"key_types\": \"rsa\"},"
           " 993]},"
           " \"d.test\": {\"verify\": null}}}");
    assert_int_equal(cfg->n_verify, 2);
    assert_int_equal(cfg->verify[0].port, 443);
    assert_int_equal(cfg->verify[0].n_hosts, 0); /* all, per certificate */
    assert_int_equal(cfg->verify[1].starttls, KS_STARTTLS_SMTP);

    /* a.test: settings' targets; hosts default to its non-wildcard names. */
    const ks_cert_config *a = &cfg->certs[0];
    assert_int_equal(a->n_verify, 2);
    assert_int_equal(a->verify[0].port, 443);
    assert_int_equal(a->verify[0].starttls, KS_STARTTLS_NONE);
    assert_int_equal(a->verify[0].protocol, KS_VERIFY_PROTOCOL_NONE);
    assert_int_equal(a->verify[0].n_hosts, 2);
    assert_string_equal(a->verify[0].hosts[0], "a.test");
    assert_string_equal(a->verify[0].hosts[1], "mail.a.test");
    assert_int_equal(a->verify[0].n_key_types, 2);
    assert_int_equal(a->verify[1].port, 25);
    assert_int_equal(a->verify[1].n_hosts, 1);
    assert_string_equal(a->verify[1].hosts[0], "mail.a.test");
    assert_int_equal(a->verify[1].n_key_types, 1);
    assert_int_equal(a->verify[1].key_types[0], KS_KEY_RSA);
    assert_string_equal(ks_starttls_name(a->verify[1].starttls), "smtp");
    assert_null(ks_starttls_name(KS_STARTTLS_NONE));
    /* b.test: the port 25 target names neither its host nor its key type. */
    const ks_cert_config *b = &cfg->certs[1];
    assert_int_equal(b->n_verify, 1);
    assert_int_equal(b->verify[0].port, 443);
    assert_int_equal(b->verify[0].n_key_types, 1);
    assert_int_equal(b->verify[0].key_types[0], KS_KEY_ECDSA);
    /* c.test: its own targets replace the settings'. */
    const ks_cert_config *c = &cfg->certs[2];
    assert_int_equal(c->n_verify, 3);
    assert_int_equal(c->verify[0].protocol, KS_VERIFY_PROTOCOL_HTTP);
    assert_int_equal(c->verify[0].n_hosts, 2);
    assert_int_equal(c->verify[1].port, 587);
    assert_int_equal(c->verify[1].n_hosts, 1);
    assert_string_equal(c->verify[1].hosts[0], "smtp.c.test");
    assert_int_equal(c->verify[2].port, 993);
    assert_int_equal(cfg->certs[3].n_verify, 0);
    ks_config_free(cfg);

    static const char *const host[] = {"certificates[\"a.test\"].verify[0].hosts",
                                       "\"b.test\" is not an alt name", NULL};
    load_fails_all(f, "{" HSM_OK ", \"certificates\": {\"a.test\": {\"verify\": [{\"port\": 1,"
                      " \"hosts\": [\"a.test\", \"b.test\"]}]}}}", host);
    load_fails(f, "{" HSM_OK ", \"certificates\": {\"a.test\": {\"key_types\": \"ecdsa\","
                  " \"verify\": {\"port\": 1, \"key_types\": [\"rsa\"]}}}}",
               "certificates[\"a.test\"].verify.key_types");
    load_fails(f, "{" HSM_OK ", \"settings\": {\"verify\": [443, 70000]}}", "settings.verify[1]");
    load_fails(f, "{" HSM_OK ", \"settings\": {\"verify\": [{\"port\": \"25x\"}]}}",
               "settings.verify[0].port");
    load_fails(f, "{" HSM_OK ", \"settings\": {\"verify\": [{\"port\": \"0\"}]}}",
               "settings.verify[0].port");
    load_fails(f, "{" HSM_OK ", \"settings\": {\"verify\": [{\"starttls\": \"smtp\"}]}}",
               "settings.verify[0]: \"port\" is required");
    load_fails(f, "{" HSM_OK ", \"settings\": {\"verify\": [{\"port\": 25, \"starttls\": \"smtps\"}]}}",
               "settings.verify[0].starttls");
    load_fails(f, "{" HSM_OK ", \"settings\": {\"verify\": [{\"port\": 443, \"protocol\": \"https\"}]}}",
               "settings.verify[0].protocol");
    load_fails(f, "{" HSM_OK ", \"settings\": {\"verify\": [{\"port\": 443, \"hosts\": [\"*.a.test\"]}]}}",
               "settings.verify[0].hosts[0]");
    load_fails(f, "{" HSM_OK ", \"settings\": {\"verify\": [{\"port\": 443, \"key_types\": [\"dsa\"]}]}}",
               "settings.verify[0].key_types[0]");
    load_fails(f, "{" HSM_OK ", \"settings\": {\"verify\": \"443\"}}", "settings.verify");
}

static void test_tlsa_records(void **state)
{
    fixture *f = *state;
    ks_config *cfg = load_ok(
        f, "{" HSM_OK ", \"certificates\": {\"a.test\": {\"alt_names\": {\"a.test\": [\"@\", \"www\"]},"
           " \"tlsa_records\": {\"A.Test.\": [\"@\", {\"host\": \"www\", \"port\": 8443,"
           " \"usage\": \"dane-ee\", \"selector\": \"cert\", \"protocol\": \"udp\", \"ttl\": 60},"
           " {\"port\": 25}], \"@\": \"mail\"}}}}");
    const ks_cert_config *c = &cfg->certs[0];
    assert_int_equal(c->n_tlsa_records, 4);
    const ks_tlsa_record *r = &c->tlsa_records[0];
    assert_string_equal(r->zone, "a.test");
    assert_string_equal(r->host, "a.test");
    assert_int_equal(r->port, 443);
    assert_int_equal(r->usage, KS_TLSA_USAGE_PKIX_EE);
    assert_int_equal(r->selector, KS_TLSA_SELECTOR_SPKI);
    assert_string_equal(r->protocol, "tcp");
    assert_int_equal(r->ttl, 300);
    r = &c->tlsa_records[1];
    assert_string_equal(r->host, "www.a.test");
    assert_int_equal(r->port, 8443);
    assert_int_equal(r->usage, KS_TLSA_USAGE_DANE_EE);
    assert_int_equal(r->selector, KS_TLSA_SELECTOR_CERT);
    assert_string_equal(r->protocol, "udp");
    assert_int_equal(r->ttl, 60);
    r = &c->tlsa_records[2]; /* host defaults to "@" */
    assert_string_equal(r->host, "a.test");
    assert_int_equal(r->port, 25);
    r = &c->tlsa_records[3]; /* zone "@": the common name */
    assert_string_equal(r->zone, "a.test");
    assert_string_equal(r->host, "mail.a.test");
    ks_config_free(cfg);

#define TLSA(x) "{" HSM_OK ", \"certificates\": {\"a.test\": {\"tlsa_records\": " x "}}}"
    load_fails(f, TLSA("{\"a.test\": [{\"usage\": \"dane\"}]}"),
               "certificates[\"a.test\"].tlsa_records[\"a.test\"][0].usage");
    load_fails(f, TLSA("{\"a.test\": [{\"selector\": \"key\"}]}"),
               "certificates[\"a.test\"].tlsa_records[\"a.test\"][0].selector");
    load_fails(f, TLSA("{\"a.test\": [{\"protocol\": \"quic\"}]}"),
               "certificates[\"a.test\"].tlsa_records[\"a.test\"][0].protocol");
    load_fails(f, TLSA("{\"a.test\": [{\"port\": 0}]}"),
               "certificates[\"a.test\"].tlsa_records[\"a.test\"][0].port");
    load_fails(f, TLSA("{\"a.test\": [{\"ttl\": -1}]}"),
               "certificates[\"a.test\"].tlsa_records[\"a.test\"][0].ttl");
    load_fails(f, TLSA("{\"a.test\": [\"@\", {\"host\": \"@\", \"port\": 443}]}"),
               "certificates[\"a.test\"].tlsa_records[\"a.test\"][1]: the record");
    load_fails(f, TLSA("{\"a.test\": [\"bad host\"]}"),
               "certificates[\"a.test\"].tlsa_records[\"a.test\"][0]");
    load_fails(f, TLSA("{\"*.a.test\": [\"@\"]}"),
               "certificates[\"a.test\"].tlsa_records[\"*.a.test\"]");
    load_fails(f, TLSA("{\"a.test\": [5]}"), "certificates[\"a.test\"].tlsa_records[\"a.test\"][0]");
    load_fails(f, TLSA("[\"a.test\"]"), "certificates[\"a.test\"].tlsa_records: expected an object");
#undef TLSA
}

/* ---- full_key: one warning per load, only when asked for ----------------- */

static void test_full_key_warning(void **state)
{
    fixture *f = *state;
    char text[8192];
    /* acmebot's defaults (directories.full_key is /etc/ssl/private): quiet. */
    ks_config *cfg = load_ok_capturing(f, "{" HSM_OK "}", text, sizeof(text));
    assert_string_equal(cfg->dir_full_key, "/etc/ssl/private");
    assert_int_equal(count_substr(text, "full_key"), 0);
    ks_config_free(cfg);
    /* All three ask for it: still one warning, naming each. */
    cfg = load_ok_capturing(f,
                            "{" HSM_OK ", \"directories\": {\"full_key\": \"/srv/full\"},"
                            " \"file_names\": {\"full_key\": \"{name}.full\"},"
                            " \"hooks\": {\"full_key_installed\": \"/bin/x {full_key_file}\"}}",
                            text, sizeof(text));
    assert_int_equal(count_substr(text, "full_key outputs"), 1);
    assert_non_null(strstr(text, "directories.full_key, file_names.full_key, "
                                 "hooks.full_key_installed: full_key outputs (certificate with "
                                 "its private key) cannot exist: the key never leaves the token; "
                                 "directories.full_key is ignored — set it to null to silence "
                                 "this"));
    ks_config_free(cfg);
    /* Set to null: silent, even with a file name. */
    cfg = load_ok_capturing(f, "{" HSM_OK ", \"directories\": {\"full_key\": null},"
                               " \"file_names\": {\"full_key\": \"{name}.full\"}}",
                            text, sizeof(text));
    assert_null(cfg->dir_full_key);
    assert_int_equal(count_substr(text, "full_key"), 0);
    ks_config_free(cfg);
    /* The hook alone still warns, once. */
    cfg = load_ok_capturing(f, "{" HSM_OK ", \"directories\": {\"full_key\": null},"
                               " \"hooks\": {\"full_key_installed\": \"/bin/x\"}}",
                            text, sizeof(text));
    assert_int_equal(count_substr(text, "full_key outputs"), 1);
    assert_int_equal(count_substr(text, "hooks.full_key_installed"), 2);
    ks_config_free(cfg);
}

/* ---- conflicting definitions, references --------------------------------- */

static void test_conflicting_definitions(void **state)
{
    fixture *f = *state;
    /* acmebot: a name in both certificates and private_keys is an error. */
    static const char *const both[] = {"private_keys[\"a.test\"]",
                                       "also defined in \"certificates\"", NULL};
    load_fails_all(f, "{" HSM_OK ", \"certificates\": {\"a.test\": null},"
                      " \"private_keys\": {\"a.test\": {\"certificates\": {\"b.test\": null}}}}",
                   both);
    /* A private key's certificate named like a certificates entry. */
    load_fails(f, "{" HSM_OK ", \"certificates\": {\"a.test\": null},"
                  " \"private_keys\": {\"k\": {\"certificates\": {\"a.test\": null}}}}",
               "private_keys.k.certificates[\"a.test\"]: certificate \"a.test\" is defined twice");
    /* Two private keys holding one certificate. */
    load_fails(f, "{" HSM_OK ", \"private_keys\": {\"k\": {\"certificates\": {\"a.test\": null}},"
                  " \"j\": {\"certificates\": {\"a.test\": null}}}}",
               "private_keys.j.certificates[\"a.test\"]");
    /* The tenant "default" is the hsm section's. */
    load_fails(f, "{" HSM_OK ", \"tenants\": {\"default\": {\"token\": \"x\", \"pin_env\": \"P\"}}}",
               "tenants.default");
    /* An unknown tenant. */
    static const char *const tenant[] = {"certificates[\"a.test\"].tenant", "\"other\"", NULL};
    load_fails_all(f, "{" HSM_OK ", \"certificates\": {\"a.test\": {\"tenant\": \"other\"}}}",
                   tenant);
}

/* ---- acmebot's README examples ------------------------------------------- */

/* The fixtures are acmebot's README examples and its full example
 * configuration, each with an "hsm" section added: keysvc keeps the keys in
 * a PKCS#11 token and needs to know which.  They are found beside this
 * file (__FILE__ is absolute: CMake passes absolute source paths). */
static void fixture_path(char *out, size_t cap, const char *name)
{
    const char *slash = strrchr(__FILE__, '/');
    snprintf(out, cap, "%.*s/configs/%s", slash ? (int)(slash - __FILE__) : 1,
             slash ? __FILE__ : ".", name);
}

static ks_config *load_fixture(const char *name)
{
    char path[PATH_MAX];
    ks_err err = {{0}};
    fixture_path(path, sizeof(path), name);
    ks_config *cfg = ks_config_load(path, &err);
    if (cfg == NULL)
        fail_msg("%s: %s", name, err.msg);
    return cfg;
}

/* A fixture's text (caller frees). */
static char *fixture_text(const char *name)
{
    char path[PATH_MAX];
    ks_err err = {{0}};
    size_t len = 0;
    fixture_path(path, sizeof(path), name);
    char *text = ks_read_file(path, 1 << 20, &len, &err);
    if (text == NULL)
        fail_msg("%s: %s", path, err.msg);
    return text;
}

static void test_readme_examples(void **state)
{
    (void)state;
    ks_config *cfg = load_fixture("acmebot_basic.json");
    assert_string_equal(cfg->account_email, "admin@example.com");
    assert_int_equal(cfg->n_certs, 1);
    assert_string_equal(cfg->certs[0].common_name, "example.com");
    assert_int_equal(cfg->certs[0].n_alt_names, 2);
    assert_string_equal(cfg->certs[0].alt_names[1], "www.example.com");
    assert_int_equal(cfg->certs[0].n_key_types, 2);
    assert_int_equal(ks_config_challenge(cfg, "www.example.com"), KS_CHALLENGE_NONE);
    ks_config_free(cfg);

    cfg = load_fixture("acmebot_http_challenges.json");
    assert_int_equal(cfg->n_http_challenges, 2);
    assert_string_equal(ks_config_webroot(cfg, "www.example.com"),
                        "/var/www/htdocs/.well-known/acme-challenge");
    assert_int_equal(ks_config_challenge(cfg, "example.com"), KS_CHALLENGE_HTTP01);
    ks_config_free(cfg);

    cfg = load_fixture("acmebot_mixed.json");
    assert_int_equal(ks_config_challenge(cfg, "www.example.com"), KS_CHALLENGE_HTTP01);
    assert_int_equal(ks_config_challenge(cfg, "mail.example.com"), KS_CHALLENGE_DNS01);
    char *dir = ks_config_http_dir_new(cfg, "www.example.com");
    assert_non_null(dir);
    assert_string_equal(dir, "/var/www/example.com/www/.well-known/acme-challenge");
    free(dir);
    ks_config_free(cfg);

    cfg = load_fixture("acmebot_private_keys.json");
    assert_int_equal(cfg->n_keys, 1);
    assert_int_equal(cfg->n_certs, 2);
    assert_int_equal(cfg->keys[0].n_key_types, 2);
    assert_int_equal(cfg->keys[0].expiration_days, 730);
    const ks_cert_config *ex = &cfg->certs[0], *mail = &cfg->certs[1];
    assert_int_equal(ex->n_key_types, 1); /* RSA only */
    assert_int_equal(ex->key_types[0], KS_KEY_RSA);
    assert_int_equal(ex->ocsp_must_staple, 1);
    assert_int_equal(ex->ecparam_curve, NID_secp521r1);
    assert_int_equal(ex->n_services, 1);
    assert_string_equal(cfg->services[ex->services[0]].name, "nginx");
    assert_int_equal(ex->n_verify, 1);
    assert_int_equal(ex->verify[0].port, 443);
    assert_int_equal(mail->n_key_types, 2);
    assert_int_equal(mail->n_services, 2);
    assert_string_equal(cfg->services[mail->services[1]].name, "postfix");
    ks_config_free(cfg);

    cfg = load_fixture("acmebot_tlsa.json");
    assert_int_equal(cfg->certs[0].n_tlsa_records, 2);
    assert_int_equal(cfg->certs[1].n_tlsa_records, 3);
    assert_string_equal(cfg->certs[1].tlsa_records[1].host, "smtp.example.com");
    assert_int_equal(cfg->certs[1].tlsa_records[1].port, 25);
    assert_int_equal(cfg->certs[1].tlsa_records[1].usage, KS_TLSA_USAGE_DANE_EE);
    assert_int_equal(cfg->certs[1].tlsa_records[2].port, 587);
    ks_config_free(cfg);

    cfg = load_fixture("acmebot_sections.json");
    assert_string_equal(cfg->file_group, "ssl-cert");
    assert_string_equal(cfg->dir_log, "/var/log/acmebot");
    assert_string_equal(cfg->fn_log, "acmebot.log");
    assert_int_equal(cfg->n_services, 12);
    assert_int_equal(cfg->n_authorizations, 1);
    assert_int_equal(cfg->authorizations[0].n_fqdns, 2);
    assert_int_equal(cfg->n_ct_logs, 2);
    assert_null(cfg->ct_logs[0].key_der); /* the README's logs give IDs only */
    const ks_cert_config *c = &cfg->certs[0];
    assert_int_equal(c->n_verify, 3);
    assert_int_equal(c->verify[0].protocol, KS_VERIFY_PROTOCOL_HTTP);
    assert_int_equal(c->verify[1].starttls, KS_STARTTLS_SMTP);
    assert_string_equal(c->verify[1].hosts[0], "smtp.example.com");
    assert_int_equal(c->verify[2].port, 993);
    assert_int_equal(c->n_ct_logs, 2);
    ks_config_free(cfg);
}

/* acmebot.example.json with its placeholders filled in.  Its TSIG key
 * files must load, so it is copied into the test's directory and its
 * directories.update_key is the relative "update_keys" (the only value
 * that is not acmebot's). */
static void test_acmebot_full_example(void **state)
{
    fixture *f = *state;
    char text[16384];
    write_key_file(f, "update_keys/example.com.key", "hmac-sha256");
    write_key_file(f, "update_keys/example.net.key", "hmac-sha512");
    char *config = fixture_text("acmebot_full.json");
    ks_config *cfg = load_ok_capturing(f, config, text, sizeof(text));
    free(config);
    /* directories.full_key is set explicitly: the one warning. */
    assert_int_equal(count_substr(text, "full_key outputs"), 1);
    assert_int_equal(count_substr(text, "unknown key"), 0);
    assert_int_equal(cfg->n_certs, 2);
    assert_int_equal(cfg->n_keys, 2);
    assert_int_equal(cfg->n_zone_keys, 2);
    assert_int_equal(cfg->n_authorizations, 1);
    /* 7 logs, 5 of them with 3 or 4 shards, over the 2 defaults. */
    assert_int_equal(cfg->n_ct_logs, 2 + 4 + 4 + 4 + 1 + 1 + 4 + 4 + 1 + 1 + 3);
    const ks_cert_config *c = &cfg->certs[0];
    assert_string_equal(c->name, "example.com");
    assert_int_equal(c->n_tlsa_records, 2);
    assert_int_equal(c->n_verify, 2);
    assert_int_equal(c->verify[1].port, 25);
    assert_int_equal(c->verify[1].n_hosts, 2);
    assert_int_equal(c->n_ct_logs, 2);
    assert_int_equal(cfg->keys[0].hpkp_days, 30);
    assert_string_equal(cfg->certs[1].name, "example.net");
    assert_int_equal(cfg->keys[1].hpkp_days, 30);
    assert_string_equal(cfg->file_user, "root");
    assert_int_equal(cfg->cert_poll_time, 30);
    ks_config_free(cfg);
}

/* ---- keysvc check -------------------------------------------------------- */

static void test_check_main(void **state)
{
    fixture *f = *state;
    char path[PATH_MAX];
    fixture_path(path, sizeof(path), "acmebot_basic.json");
    assert_int_equal(ks_check_main(path), 0);

    write_config(f, "{" HSM_OK ", \"settings\": {\"file_user\": \"no-such-user-ks\"}}");
    assert_int_equal(ks_check_main(f->path), 2);
    write_config(f, "{" HSM_OK ", \"settings\": {\"log_group\": \"no-such-group-ks\"}}");
    assert_int_equal(ks_check_main(f->path), 2);
    /* An output directory under a regular file cannot be made. */
    write_config(f, "{" HSM_OK ", \"directories\": {\"ocsp\": \"keysvc.json/ocsp\"}}");
    assert_int_equal(ks_check_main(f->path), 2);
    /* A configuration that does not load. */
    write_config(f, "{" HSM_OK ", \"settings\": {\"dhparam_size\": 1000}}");
    assert_int_equal(ks_check_main(f->path), 2);
    /* A missing PIN file is an error; users that exist are fine. */
    write_config(f, "{\"hsm\": {\"token\": \"t\", \"pin_file\": \"no-pin\"},"
                    " \"settings\": {\"file_user\": \"root\"}}");
    assert_int_equal(ks_check_main(f->path), 2);
    write_config(f, "{\"hsm\": {\"token\": \"t\", \"pin_file\": \"keysvc.json\"},"
                    " \"settings\": {\"file_user\": \"root\"}}");
    assert_int_equal(ks_check_main(f->path), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_full_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_protocol_settings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_protocol_setting_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_default_key_types_follow_settings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_null_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_output_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_keys_warn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_syntax_error_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trailing_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_and_non_object, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_key_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_common_name_not_in_alt_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_alt_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_dns_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hyphen_labels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_output_collisions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hsm_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_size_1024_rejected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_directory_url_must_be_https, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_curve_and_nulls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dns_settings_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dns_settings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dns_setting_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zone_update_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_zone_update_key_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hooks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hook_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_challenge_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_challenge_precedence, setup, teardown),
        cmocka_unit_test_setup_teardown(test_acmebot_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_acmebot_settings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_acmebot_setting_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_directories_and_file_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_services, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hpkp_headers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ct_logs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_authorizations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_settings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cert_settings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_verify, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tlsa_records, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_key_warning, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conflicting_definitions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readme_examples, setup, teardown),
        cmocka_unit_test_setup_teardown(test_acmebot_full_example, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_main, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
