/*
 * keysvc: ACME certificates whose keys never leave a PKCS#11 token.
 */
#include "check.h"
#include "config.h"
#include "ks_log.h"
#include "ks_util.h"
#include "run.h"
#include "signer.h"
#include "signer_server.h"

#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

static void usage(FILE *out)
{
    fprintf(out,
            "Usage: keysvc run [OPTIONS] [NAME...]\n"
            "       keysvc check [OPTIONS]\n"
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
            "             NAMEs (private keys or certificates) restrict the run to them\n"
            "  check      check the configuration without a CA, token or database\n"
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
            "Options of run (acmebot's; without any of --auth..--verify, all parts):\n"
            "  -a, --auth            only the domain authorizations\n"
            "  -C, --certs           only the certificates and their files\n"
            "  -t, --tlsa            only the TLSA records (tlsa_records, RFC 2136)\n"
            "  -s, --sct             only the Signed Certificate Timestamps (not yet)\n"
            "  -o, --ocsp            only the OCSP responses (not yet)\n"
            "      --verify          only verify the installed certificates (not yet)\n"
            "  -R, --renew           renew the selected certificates now, whatever their age\n"
            "  -r, --rollover        first roll the keys over (the backup becomes primary)\n"
            "  -F, --force           roll over even inside the HPKP window of the backup key\n"
            "  -K, --revoke          revoke every certificate of the NAMEd keys (required),\n"
            "                        archive their files, remove their TLSA records\n"
            "  -w, --randomwait      first wait a random time (settings.min/max_run_delay)\n"
            "      --tenant NAME     only this tenant (its token, account and certificates)\n"
            "Options of the other commands:\n"
            "      --socket PATH     signer: listen here instead of signer.socket\n"
            "      --reason R        revoke: CRLReason, a number or name (keyCompromise...)\n"
            "      --with-certificate-key  revoke: sign with the certificate's own key\n"
            "      --yes             account deactivate: yes, for good\n"
            "Common options:\n"
            "  -c, --config FILE     the configuration file (default: see below)\n"
            "  -q, --quiet           no action lines on stdout (errors still on stderr)\n"
            "  -v, --verbose         also report each step on stderr\n"
            "  -d, --debug           also log every ACME request and PKCS#11 call\n"
            "  -D, --detail          also log the payloads of requests and responses\n"
            "      --color           colour errors and warnings, even when not on a terminal\n"
            "      --no-color        never colour (default: on a terminal, see color_output)\n"
            "  -p, --pass            refused: the PIN never comes from the command line\n"
            "  -h, --help            show this help\n"
            "  -V, --version         show the version (acmebot's -V is --verify here)\n"
            "\n"
            "The token PIN comes from the environment variable or file named in the\n"
            "configuration (\"hsm\" or \"tenants\"), never from the command line.  Only the\n"
            "signer process reads it.\n"
            "\n"
            "Configuration file search: without --config, the first of ./keysvc.json,\n"
            "./acmebot.json (an acmebot configuration works unchanged),\n"
            "/etc/keysvc/keysvc.json, keysvc.json beside the keysvc program, and\n"
            "../etc/keysvc/keysvc.json from the program's directory that exists.\n"
            "\n"
            "run, account and revoke also append to the log file directories.log/\n"
            "file_names.log at settings.log_level (normal, verbose, debug, detail).\n"
            "\n"
            "Exit status: 0 something changed, 1 nothing to do, 2 failed (what was\n"
            "already in place is kept).\n");
}

/* Core files could hold the PIN or session secrets: none are written. */
static void harden_process(void)
{
    struct rlimit none = {0, 0};
    setrlimit(RLIMIT_CORE, &none);
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

/* ---- configuration file search ------------------------------------------ */

enum { N_CONFIG_PLACES = 5 };

/* acmebot's search (., /etc/<tool>, the tool's directory) with keysvc's
 * names; ./acmebot.json so that a migration needs no --config.  Fills
 * `places` with newly allocated paths (an entry may be NULL when memory ran
 * out); returns how many. */
static size_t config_places(char *places[N_CONFIG_PLACES])
{
    static const char *const fixed[] = {"./keysvc.json", "./acmebot.json",
                                        "/etc/keysvc/keysvc.json"};
    size_t n = 0;
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        places[n++] = strdup(fixed[i]);
    char exe[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    char *slash = NULL;
    if (len > 0) {
        exe[len] = '\0';
        slash = strrchr(exe, '/');
    }
    if (slash != NULL) {
        *slash = '\0'; /* the install directory; "" for a program in / */
        places[n++] = ks_strdup_printf("%s/keysvc.json", exe);
        places[n++] = ks_strdup_printf("%s/../etc/keysvc/keysvc.json", exe);
    }
    return n;
}

static void report_no_config(char *const *places, size_t n)
{
    char tried[2048] = "";
    size_t used = 0;
    for (size_t i = 0; i < n && used < sizeof(tried); i++)
        if (places[i] != NULL)
            used += (size_t)snprintf(tried + used, sizeof(tried) - used, "%s%s",
                                     used ? ", " : "", places[i]);
    ks_error("no configuration file (tried %s): give --config FILE", tried);
}

/* The configuration file to load, newly allocated, or NULL (reported).  The
 * first place that exists wins, readable or not: a file the user cannot
 * read is reported as such rather than silently passed over for another. */
static char *find_config(const char *given)
{
    if (given != NULL)
        return strdup(given);
    char *places[N_CONFIG_PLACES] = {NULL};
    size_t n = config_places(places);
    char *found = NULL;
    for (size_t i = 0; i < n && found == NULL; i++)
        if (places[i] != NULL && access(places[i], F_OK) == 0)
            found = strdup(places[i]);
    if (found == NULL)
        report_no_config(places, n);
    for (size_t i = 0; i < n; i++)
        free(places[i]);
    return found;
}

/* ---- command line -------------------------------------------------------- */

typedef struct cli {
    const char *command;
    const char *config_path;
    const char *socket;
    int yes;
    int revoke;    /* run --revoke */
    int log_level; /* stderr: the most verbose of -v, -d, -D */
    int color;     /* --color 1, --no-color 0, neither -1 */
    ks_run_options run;
} cli;

enum {
    OPT_TENANT = 256,
    OPT_SOCKET,
    OPT_REASON,
    OPT_CERT_KEY,
    OPT_YES,
    OPT_VERIFY,
    OPT_COLOR,
    OPT_NO_COLOR,
};

/* What an option handler did. */
enum { OPT_DONE = 0, OPT_EXIT = 1, OPT_BAD = -1, OPT_NOT_MINE = -2 };

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

/* acmebot's -p/--pass PASSPHRASE.  A PIN in argv is readable by every user
 * through /proc and ps, so it is refused; the words that may hold it are
 * wiped from our argv first, which shortens the time they are visible. */
static int refuse_pass(int argc, char **argv)
{
    char *pin = optarg;
    if (pin == NULL && optind < argc && argv[optind][0] != '-')
        pin = argv[optind]; /* "--pass PIN", acmebot's form */
    if (pin != NULL)
        explicit_bzero(pin, strlen(pin));
    fprintf(stderr, "keysvc: --pass is not offered: a PIN on the command line is visible to "
                    "every user of the machine; the PIN comes from the environment variable or "
                    "file named in the configuration (hsm.pin_env / hsm.pin_file), or from a "
                    "prompt on a terminal\n");
    return OPT_BAD;
}

static void raise_log_level(cli *c, int level)
{
    if (level > c->log_level)
        c->log_level = level;
}

/* -q -v -d -D --color --no-color -h -V. */
static int output_option(int opt, cli *c)
{
    switch (opt) {
    case 'q':
        c->run.quiet = 1;
        ks_log_set_quiet(1);
        return OPT_DONE;
    case 'v':
        raise_log_level(c, KS_LOG_INFO);
        return OPT_DONE;
    case 'd':
        raise_log_level(c, KS_LOG_DEBUG);
        return OPT_DONE;
    case 'D':
        raise_log_level(c, KS_LOG_DETAIL);
        ks_log_set_detail(1);
        return OPT_DONE;
    case OPT_COLOR:
    case OPT_NO_COLOR:
        c->color = opt == OPT_COLOR;
        ks_log_set_color(c->color);
        return OPT_DONE;
    case 'h':
        usage(stdout);
        return OPT_EXIT;
    case 'V':
        printf("keysvc %s\n", KEYSVC_VERSION);
        return OPT_EXIT;
    default:
        return OPT_NOT_MINE;
    }
}

/* acmebot's run options. */
static int run_option(int opt, cli *c)
{
    static const struct {
        int opt;
        unsigned part;
    } parts[] = {{'a', KS_PART_AUTH}, {'C', KS_PART_CERTS}, {'t', KS_PART_TLSA},
                 {'s', KS_PART_SCT},  {'o', KS_PART_OCSP},  {OPT_VERIFY, KS_PART_VERIFY}};
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
        if (opt == parts[i].opt) {
            c->run.parts |= parts[i].part;
            return OPT_DONE;
        }
    switch (opt) {
    case 'r':
        c->run.rollover = 1;
        return OPT_DONE;
    case 'R':
        c->run.renew = 1;
        return OPT_DONE;
    case 'F':
        c->run.force = 1;
        return OPT_DONE;
    case 'K':
        c->revoke = 1;
        return OPT_DONE;
    case 'w':
        c->run.random_wait = 1;
        return OPT_DONE;
    default:
        return OPT_NOT_MINE;
    }
}

/* Options with a value, and those of the other commands. */
static int value_option(int opt, const char *arg, cli *c)
{
    switch (opt) {
    case 'c':
        c->config_path = arg;
        return OPT_DONE;
    case OPT_TENANT:
        c->run.tenant = arg;
        return OPT_DONE;
    case OPT_SOCKET:
        c->socket = arg;
        return OPT_DONE;
    case OPT_REASON:
        if ((c->run.revoke_reason = parse_reason(arg)) < 0) {
            fprintf(stderr, "keysvc: --reason: \"%s\" is not a revocation reason\n", arg);
            return OPT_BAD;
        }
        return OPT_DONE;
    case OPT_CERT_KEY:
        c->run.revoke_with_cert_key = 1;
        return OPT_DONE;
    case OPT_YES:
        c->yes = 1;
        return OPT_DONE;
    default:
        return OPT_NOT_MINE;
    }
}

/* The options, acmebot's short letters included except -V, which stays
 * --version as keysvc always had it. */
static const struct option longopts[] = {
    {"config", required_argument, NULL, 'c'},
    {"quiet", no_argument, NULL, 'q'},
    {"verbose", no_argument, NULL, 'v'},
    {"debug", no_argument, NULL, 'd'},
    {"detail", no_argument, NULL, 'D'},
    {"color", no_argument, NULL, OPT_COLOR},
    {"no-color", no_argument, NULL, OPT_NO_COLOR},
    {"randomwait", no_argument, NULL, 'w'},
    {"rollover", no_argument, NULL, 'r'},
    {"force", no_argument, NULL, 'F'},
    {"renew", no_argument, NULL, 'R'},
    {"revoke", no_argument, NULL, 'K'},
    {"auth", no_argument, NULL, 'a'},
    {"certs", no_argument, NULL, 'C'},
    {"tlsa", no_argument, NULL, 't'},
    {"sct", no_argument, NULL, 's'},
    {"ocsp", no_argument, NULL, 'o'},
    {"verify", no_argument, NULL, OPT_VERIFY},
    {"pass", optional_argument, NULL, 'p'},
    {"tenant", required_argument, NULL, OPT_TENANT},
    {"socket", required_argument, NULL, OPT_SOCKET},
    {"reason", required_argument, NULL, OPT_REASON},
    {"with-certificate-key", no_argument, NULL, OPT_CERT_KEY},
    {"yes", no_argument, NULL, OPT_YES},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

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

/* "account SUBCOMMAND": the action, or -1 with a message. */
static int account_command(cli *c)
{
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

/* The command word and its operands: the action, or -1 with a message. */
static int command_action(cli *c)
{
    const char *cmd = c->command;
    int no_names = strcmp(cmd, "signer") == 0 || strcmp(cmd, "check") == 0;
    if (no_names && c->run.n_names > 0) {
        fprintf(stderr, "keysvc: %s takes no names\n", cmd);
        return -1;
    }
    if (no_names || strcmp(cmd, "run") == 0 || strcmp(cmd, "keys") == 0)
        return KS_ACTION_RUN;
    if (strcmp(cmd, "revoke") == 0)
        return KS_ACTION_REVOKE;
    if (strcmp(cmd, "account") == 0)
        return account_command(c);
    fprintf(stderr, "keysvc: unknown command \"%s\"\n", cmd);
    return -1;
}

/* run --revoke: acmebot's safety measure, the keys must be named. */
static int apply_revoke(cli *c)
{
    if (!c->revoke)
        return 0;
    if (strcmp(c->command, "run") != 0) {
        fprintf(stderr, "keysvc: --revoke belongs to run (keysvc revoke NAME... revokes "
                        "single certificates)\n");
        return -1;
    }
    if (c->run.n_names == 0) {
        fprintf(stderr, "keysvc: --revoke needs the names of the private keys or certificates "
                        "to revoke (a safety measure)\n");
        return -1;
    }
    c->run.action = KS_ACTION_REVOKE_KEYS;
    return 0;
}

static int one_option(int opt, int argc, char **argv, cli *c)
{
    if (opt == 'p')
        return refuse_pass(argc, argv);
    int r = output_option(opt, c);
    if (r == OPT_NOT_MINE)
        r = run_option(opt, c);
    if (r == OPT_NOT_MINE)
        r = value_option(opt, optarg, c);
    /* getopt has explained an unknown option or a missing value. */
    return r == OPT_NOT_MINE ? OPT_BAD : r;
}

/* Parses the command line; 0 to go on, 1 when help or version was printed,
 * -1 on a usage error (explained), -2 when the usage was printed. */
static int parse_args(int argc, char **argv, cli *c)
{
    int opt;
    while ((opt = getopt_long(argc, argv, "c:qvdDwrFRKaCtsop::hV", longopts, NULL)) != -1) {
        int r = one_option(opt, argc, argv, c);
        if (r != OPT_DONE)
            return r;
    }
    ks_log_set_level(c->log_level);
    if (optind >= argc) {
        usage(stderr);
        return -2;
    }
    c->command = argv[optind++];
    c->run.names = argv + optind;
    c->run.n_names = (size_t)(argc - optind);
    int action = command_action(c);
    if (action < 0)
        return -1;
    c->run.action = (ks_action)action;
    return apply_revoke(c);
}

/* ---- commands ------------------------------------------------------------ */

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

/* settings.log_level for the file (the configuration's default is acmebot's
 * "debug"); -1 when there is to be no file. */
static int log_file_level(const ks_config *cfg)
{
    if (cfg->dir_log == NULL || cfg->log_level == NULL)
        return -1;
    int level = ks_log_level_from_name(cfg->log_level);
    if (level < 0) {
        ks_warn("settings.log_level \"%s\" is not normal, verbose, debug or detail: using "
                "normal",
                cfg->log_level);
        level = KS_LOG_NORMAL;
    }
    return level;
}

/* acmebot's settings.log_user / log_group own the log file (so that an
 * adm group can read it); a name that does not resolve is a warning. */
static void give_log_file(const ks_config *cfg, const char *path)
{
    uid_t uid = (uid_t)-1;
    gid_t gid = (gid_t)-1;
    struct passwd *pw = cfg->log_user ? getpwnam(cfg->log_user) : NULL;
    struct group *gr = cfg->log_group ? getgrnam(cfg->log_group) : NULL;
    if (cfg->log_user != NULL && pw == NULL)
        ks_warn("log file %s: settings.log_user: no user \"%s\"", path, cfg->log_user);
    if (cfg->log_group != NULL && gr == NULL)
        ks_warn("log file %s: settings.log_group: no group \"%s\"", path, cfg->log_group);
    if (pw != NULL)
        uid = pw->pw_uid;
    if (gr != NULL)
        gid = gr->gr_gid;
    if (ks_log_chown_file(uid, gid) != 0)
        ks_warn("log file %s: giving it to %s:%s: %s", path, cfg->log_user ? cfg->log_user : "-",
                cfg->log_group ? cfg->log_group : "-", strerror(errno));
}

/* acmebot's directories.log / file_names.log.  Without it the run goes on:
 * a full or unwritable /var/log must not stop renewals. */
static void open_log_file(const ks_config *cfg)
{
    int level = log_file_level(cfg);
    if (level < 0)
        return;
    ks_err err = {0};
    if (ks_mkdirs(cfg->dir_log, 0750, &err) != 0) {
        ks_warn("log file: %s; going on without it", err.msg);
        return;
    }
    char *path =
        ks_strdup_printf("%s/%s", cfg->dir_log, cfg->fn_log ? cfg->fn_log : "keysvc.log");
    if (path != NULL && ks_log_open_file(path, level, 0640) != 0)
        ks_warn("log file %s: %s; going on without it", path, strerror(errno));
    else if (path != NULL)
        give_log_file(cfg, path);
    free(path);
}

/* settings.color_output false turns the colour off; --color and --no-color
 * win over it, as in acmebot. */
static void apply_color_setting(const cli *c, const ks_config *cfg)
{
    if (c->color < 0 && !cfg->color_output)
        ks_log_set_color(0);
}

/* Loads the configuration and runs the command on it. */
static int run_command(cli *c, const char *config_path)
{
    if (strcmp(c->command, "check") == 0)
        return ks_check_main(config_path); /* loads the file itself, to report on it */
    ks_err err = {0};
    ks_config *cfg = ks_config_load(config_path, &err);
    if (cfg == NULL) {
        ks_error("%s", err.msg);
        return KS_EXIT_FAILED;
    }
    apply_color_setting(c, cfg);
    int rc;
    if (strcmp(c->command, "signer") == 0) {
        rc = cmd_signer(cfg, c);
    } else if (strcmp(c->command, "keys") == 0) {
        rc = ks_keys_list_main(cfg, &c->run);
    } else {
        /* run, account, revoke: what changes things is logged. */
        open_log_file(cfg);
        rc = ks_run_main(cfg, &c->run);
    }
    ks_config_free(cfg);
    return rc;
}

int main(int argc, char **argv)
{
    cli c = {.log_level = KS_LOG_WARN, .color = -1, .run = {.revoke_reason = -1}};
    harden_process();
    /* One action per line, whole, also when stdout and the log on stderr go
     * to one file or journal. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* An OPENSSL_CONF meant for servers may load the pkcs11 engine, which
     * would initialise our token module behind our back (notes: hsm 5.9). */
    OPENSSL_init_crypto(OPENSSL_INIT_NO_LOAD_CONFIG, NULL);
    int parsed = parse_args(argc, argv, &c);
    if (parsed != 0) {
        if (parsed == -1)
            fprintf(stderr, "keysvc: keysvc --help lists the commands and options\n");
        return parsed < 0 ? KS_EXIT_FAILED : 0;
    }
    char *config_path = find_config(c.config_path);
    if (config_path == NULL)
        return KS_EXIT_FAILED;
    int rc = run_command(&c, config_path);
    free(config_path);
    ks_log_close_file();
    return rc;
}
