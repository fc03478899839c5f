/*
 * keysvc: ACME certificates whose keys never leave a PKCS#11 token.
 */
#include "config.h"
#include "ks_log.h"
#include "run.h"

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

static const char *const default_configs[] = {"./keysvc.json", "/etc/keysvc/keysvc.json", NULL};

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: keysvc COMMAND [OPTIONS]\n"
            "\n"
            "Obtains and maintains ACME certificates whose private keys, and the ACME\n"
            "account key, are generated in a PKCS#11 token and never leave it.\n"
            "\n"
            "Commands:\n"
            "  run        issue or renew what the configuration asks for, write the files\n"
            "\n"
            "Options:\n"
            "  -c, --config FILE  acmebot-style JSON configuration (default: ./keysvc.json,\n"
            "                     then /etc/keysvc/keysvc.json)\n"
            "  -q, --quiet        print nothing on standard output\n"
            "  -v, --verbose      report each step on standard error\n"
            "      --debug        also log every ACME request and PKCS#11 call\n"
            "  -h, --help         show this help\n"
            "  -V, --version      show the version\n"
            "\n"
            "The token PIN comes from the environment variable or file named in the\n"
            "configuration's \"hsm\" section, never from the command line.\n"
            "\n"
            "Exit status: 0 something was issued or written, 1 nothing to do,\n"
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

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'}, {"quiet", no_argument, NULL, 'q'},
        {"verbose", no_argument, NULL, 'v'},      {"debug", no_argument, NULL, 'D'},
        {"help", no_argument, NULL, 'h'},         {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *config_path = NULL;
    ks_run_options opts = {0};
    int opt;

    harden_process();
    /* An OPENSSL_CONF meant for servers may load the pkcs11 engine, which
     * would initialise our token module behind our back (notes: hsm 5.9). */
    OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG, NULL);
    while ((opt = getopt_long(argc, argv, "c:qvhV", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config_path = optarg;
            break;
        case 'q':
            opts.quiet = 1;
            break;
        case 'v':
            ks_log_set_level(KS_LOG_INFO);
            break;
        case 'D':
            ks_log_set_level(KS_LOG_DEBUG);
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("keysvc %s\n", KEYSVC_VERSION);
            return 0;
        default:
            usage(stderr);
            return KS_EXIT_FAILED;
        }
    }
    if (optind >= argc || strcmp(argv[optind], "run") != 0 || optind + 1 != argc) {
        if (optind < argc)
            fprintf(stderr, "keysvc: unknown command or extra argument \"%s\"\n", argv[optind]);
        usage(stderr);
        return KS_EXIT_FAILED;
    }
    config_path = find_config(config_path);
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
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = ks_run_main(cfg, &opts);
    curl_global_cleanup();
    ks_config_free(cfg);
    return rc;
}
