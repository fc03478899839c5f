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
    ks_run_options run;
} cli;

enum { OPT_DEBUG = 256, OPT_TENANT, OPT_ROLLOVER, OPT_SOCKET };

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
    if (strcmp(c->command, "run") != 0 && strcmp(c->command, "signer") != 0 &&
        strcmp(c->command, "keys") != 0) {
        fprintf(stderr, "keysvc: unknown command \"%s\"\n", c->command);
        return -1;
    }
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
    cli c = {0};
    harden_process();
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
