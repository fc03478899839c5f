/*
 * keysvc: ACME certificates whose keys never leave a PKCS#11 token.
 */
#include "config.h"
#include "ks_log.h"
#include "run.h"
#include "signer.h"
#include "signer_server.h"

#include <getopt.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

static const char *const default_configs[] = {"./keysvc.json", "/etc/keysvc/keysvc.json", NULL};

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: keysvc run [OPTIONS] [NAME...]\n"
            "       keysvc keys [OPTIONS] [NAME...]\n"
            "       keysvc account show|update|deactivate|key-rollover [OPTIONS]\n"
            "       keysvc revoke [--reason REASON] [--with-certificate-key] NAME...\n"
            "       keysvc signer [OPTIONS]\n"
            "\n"
            "Obtains and maintains ACME certificates whose private keys, and the ACME\n"
            "account key, are generated in a PKCS#11 token and never leave it.\n"
            "\n"
            "Commands:\n"
            "  run        issue or renew what the configuration asks for, write the files;\n"
            "             NAMEs (certificates or private keys) restrict the run to them\n"
            "  keys       list the keys (tenant, purpose, name, type, role, age, SPKI pin\n"
            "             for HPKP/TLSA, pkcs11: URI) from the database; NAMEs filter\n"
            "  account    show: the ACME account as the CA has it (per tenant)\n"
            "             update: send the contact from the configuration (run does\n"
            "             this too when account.email changes)\n"
            "             deactivate: deactivate the account for good and destroy its key\n"
            "             (needs --yes); the next run registers a new account\n"
            "             key-rollover: make a new account key in the token, move the\n"
            "             account to it (ACME keyChange), destroy the old key\n"
            "  revoke     revoke the current certificates NAMEd (every key type); the\n"
            "             next run issues replacements\n"
            "  signer     serve the key service on the configuration's signer.socket for\n"
            "             workers on this host (keysvc run starts its own otherwise)\n"
            "\n"
            "Options:\n"
            "  -c, --config FILE  acmebot-style JSON configuration (default: ./keysvc.json,\n"
            "                     then /etc/keysvc/keysvc.json)\n"
            "      --tenant NAME  only this tenant (its token, account and certificates)\n"
            "      --rollover     run: first roll the keys over (the backup becomes the\n"
            "                     primary, a new backup is made); all keys, or the NAMEs\n"
            "      --socket PATH  signer: listen here instead of signer.socket\n"
            "      --reason R     revoke: the CRLReason, a number or unspecified,\n"
            "                     keyCompromise, affiliationChanged, superseded,\n"
            "                     cessationOfOperation (default: none given)\n"
            "      --with-certificate-key\n"
            "                     revoke: sign with the certificate's own key instead\n"
            "                     of the account key\n"
            "      --yes          account deactivate: yes, for good\n"
            "  -q, --quiet        print nothing on standard output\n"
            "  -v, --verbose      report each step on standard error\n"
            "      --debug        also log every ACME request and PKCS#11 call\n"
            "  -h, --help         show this help\n"
            "  -V, --version      show the version\n"
            "\n"
            "The token PIN comes from the environment variable or file named in the\n"
            "configuration (\"hsm\" or \"tenants\"), never from the command line.  Only the\n"
            "signer process reads it.\n"
            "\n"
            "Exit status of run: 0 something was issued or written, 1 nothing to do,\n"
            "2 failure (what was already in place is kept).\n");
}

/* Core files could hold the PIN or session secrets: none are written. */
static void harden_process(void)
{
    struct rlimit none = {0, 0};
    setrlimit(RLIMIT_CORE, &none);
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

static const char *find_config(const char *given)
{
    if (given != NULL)
        return given;
    for (const char *const *p = default_configs; *p; p++)
        if (access(*p, R_OK) == 0)
            return *p;
    return NULL;
}

typedef struct cli {
    const char *command;
    const char *config_path;
    const char *socket;
    int yes;
    ks_run_options run;
} cli;

enum { OPT_DEBUG = 256, OPT_TENANT, OPT_ROLLOVER, OPT_SOCKET, OPT_REASON, OPT_CERT_KEY, OPT_YES };

/* RFC 5280 CRLReason codes a subscriber may give (RFC 8555 7.6 lets the CA
 * refuse others). */
static int parse_reason(const char *text)
{
    static const char *const names[] = {"unspecified", "keyCompromise", NULL,
                                        "affiliationChanged", "superseded",
                                        "cessationOfOperation"};
    for (int i = 0; i < (int)(sizeof(names) / sizeof(names[0])); i++)
        if (names[i] != NULL && strcmp(text, names[i]) == 0)
            return i;
    char *end = NULL;
    long code = strtol(text, &end, 10);
    if (end == text || *end != '\0' || code < 0 || code > 10 || code == 7)
        return -1;
    return (int)code;
}

/* "account SUBCOMMAND": the action, or -1. */
static int account_action(const char *sub)
{
    static const struct {
        const char *name;
        ks_action action;
    } subs[] = {{"show", KS_ACTION_ACCOUNT_SHOW},
                {"update", KS_ACTION_ACCOUNT_UPDATE},
                {"deactivate", KS_ACTION_ACCOUNT_DEACTIVATE},
                {"key-rollover", KS_ACTION_ACCOUNT_KEY_ROLLOVER}};
    for (size_t i = 0; sub != NULL && i < sizeof(subs) / sizeof(subs[0]); i++)
        if (strcmp(sub, subs[i].name) == 0)
            return (int)subs[i].action;
    return -1;
}

/* The command word and its operands: the action, or -1 with a message. */
static int command_action(cli *c)
{
    const char *cmd = c->command;
    if (strcmp(cmd, "run") == 0 || strcmp(cmd, "keys") == 0 || strcmp(cmd, "signer") == 0)
        return KS_ACTION_RUN;
    if (strcmp(cmd, "revoke") == 0)
        return KS_ACTION_REVOKE;
    if (strcmp(cmd, "account") != 0) {
        fprintf(stderr, "keysvc: unknown command \"%s\"\n", cmd);
        return -1;
    }
    int action = account_action(c->run.n_names == 1 ? c->run.names[0] : NULL);
    if (action < 0)
        fprintf(stderr, "keysvc: account needs one of show, update, deactivate, key-rollover\n");
    else if (action == KS_ACTION_ACCOUNT_DEACTIVATE && !c->yes) {
        fprintf(stderr, "keysvc: account deactivate cannot be undone; add --yes\n");
        action = -1;
    }
    c->run.n_names = 0;
    return action;
}

/* Parses the command line; 0 to go on, 1 when help or version was printed,
 * -1 on a usage error. */
static int parse_args(int argc, char **argv, cli *c)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'}, {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},      {"debug", no_argument, NULL, OPT_DEBUG},
        {"tenant", required_argument, NULL, OPT_TENANT},
        {"rollover", no_argument, NULL, OPT_ROLLOVER},
        {"socket", required_argument, NULL, OPT_SOCKET},
        {"reason", required_argument, NULL, OPT_REASON},
        {"with-certificate-key", no_argument, NULL, OPT_CERT_KEY},
        {"yes", no_argument, NULL, OPT_YES},
        {"help", no_argument, NULL, 'h'},         {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "c:qvhV", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            c->config_path = optarg;
            break;
        case 'q':
            c->run.quiet = 1;
            break;
        case 'v':
            ks_log_set_level(KS_LOG_INFO);
            break;
        case OPT_DEBUG:
            ks_log_set_level(KS_LOG_DEBUG);
            break;
        case OPT_TENANT:
            c->run.tenant = optarg;
            break;
        case OPT_ROLLOVER:
            c->run.rollover = 1;
            break;
        case OPT_SOCKET:
            c->socket = optarg;
            break;
        case OPT_REASON:
            if ((c->run.revoke_reason = parse_reason(optarg)) < 0) {
                fprintf(stderr, "keysvc: --reason: \"%s\" is not a revocation reason\n", optarg);
                return -1;
            }
            break;
        case OPT_CERT_KEY:
            c->run.revoke_with_cert_key = 1;
            break;
        case OPT_YES:
            c->yes = 1;
            break;
        case 'h':
            usage(stdout);
            return 1;
        case 'V':
            printf("keysvc %s\n", KEYSVC_VERSION);
            return 1;
        default:
            return -1;
        }
    }
    if (optind >= argc)
        return -1;
    c->command = argv[optind++];
    c->run.names = argv + optind;
    c->run.n_names = (size_t)(argc - optind);
    int action = command_action(c);
    if (action < 0)
        return -1;
    c->run.action = (ks_action)action;
    if (strcmp(c->command, "signer") == 0 && c->run.n_names > 0) {
        fprintf(stderr, "keysvc: signer takes no names\n");
        return -1;
    }
    return 0;
}

/* keysvc signer: the standalone key service. */
static int cmd_signer(const ks_config *cfg, const cli *c)
{
    ks_err err = {0};
    const char *path = c->socket ? c->socket : cfg->signer_socket;
    if (path == NULL) {
        ks_error("%s: no signer.socket configured (or give --socket PATH)", cfg->path);
        return KS_EXIT_FAILED;
    }
    size_t n = 0;
    ks_signer_wipe_unused_pins(cfg, c->run.tenant);
    ks_signer_tenant_config *tenants = ks_signer_tenants_from_config(cfg, c->run.tenant, &n, &err);
    ks_signer_server *server =
        tenants ? ks_signer_server_new(cfg->hsm_module, tenants, n, &err) : NULL;
    free(tenants);
    int rc = KS_EXIT_FAILED;
    if (server != NULL) {
        ks_signer_install_test_hooks();
        rc = ks_signer_serve_path(server, path, cfg->signer_socket_group, &err) < 0
                 ? KS_EXIT_FAILED
                 : 0;
    }
    if (rc != 0)
        ks_error("%s", err.msg);
    ks_signer_server_free(server);
    return rc;
}

int main(int argc, char **argv)
{
    cli c = {.run = {.revoke_reason = -1}};
    harden_process();
    /* One action per line, whole, also when stdout and the log on stderr go
     * to one file or journal. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* An OPENSSL_CONF meant for servers may load the pkcs11 engine, which
     * would initialise our token module behind our back (notes: hsm 5.9). */
    OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG, NULL);
    int parsed = parse_args(argc, argv, &c);
    if (parsed != 0) {
        if (parsed < 0)
            usage(stderr);
        return parsed < 0 ? KS_EXIT_FAILED : 0;
    }
    const char *config_path = find_config(c.config_path);
    if (config_path == NULL) {
        ks_error("no configuration file: give --config FILE");
        return KS_EXIT_FAILED;
    }
    ks_err err = {0};
    ks_config *cfg = ks_config_load(config_path, &err);
    if (cfg == NULL) {
        ks_error("%s", err.msg);
        return KS_EXIT_FAILED;
    }
    int rc;
    if (strcmp(c.command, "signer") == 0) {
        rc = cmd_signer(cfg, &c);
    } else if (strcmp(c.command, "keys") == 0) {
        rc = ks_keys_list_main(cfg, &c.run);
    } else {
        rc = ks_run_main(cfg, &c.run);
    }
    ks_config_free(cfg);
    return rc;
}
