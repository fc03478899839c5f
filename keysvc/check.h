/*
 * check: `keysvc check`, the configuration checked as far as it can be
 * without a CA, a token or a database.
 *
 * The file is loaded (ks_config_load logs its warnings to stderr), then the
 * things a load does not look at: the users and groups named exist, every
 * output directory can be made (its nearest existing ancestor is a
 * directory), commands split into words, each tenant's PIN source is there
 * (the PIN is never read), and root_cert.<key_type>.pem beside the
 * configuration is readable when full_certificate files are on.  Nothing is
 * connected to and the PKCS#11 module is not opened.
 */
#ifndef KEYSVC_CHECK_H
#define KEYSVC_CHECK_H

/* Prints every problem to stderr and, when there is no error, "configuration
 * FILE is valid (...)" to stdout.  Returns 0 when valid (warnings allowed),
 * 2 on any error. */
int ks_check_main(const char *config_path);

#endif
