/*
 * hook: runs an operator's command with fork/exec and an argument vector.
 *
 * The command is split into words the way a shell splits a simple command
 * (blanks separate words; single quotes, double quotes and backslash
 * quote), and nothing more: no variables, globbing, redirection, pipes or
 * other operators.  Data never becomes part of a command line: a hook gets
 * it in its environment, so a name holding shell metacharacters cannot run
 * anything.
 */
#ifndef KEYSVC_HOOK_H
#define KEYSVC_HOOK_H

#include "ks_err.h"

#include <stddef.h>

/* At most this much of a hook's standard output is kept. */
#define KS_HOOK_MAX_OUTPUT (64 * 1024)

typedef struct ks_hook_var {
    const char *name;
    const char *value;
} ks_hook_var;

/* Splits a command into words: *argv newly allocated and NULL-terminated
 * (free with ks_words_free).  -1 with err for an unterminated quote or an
 * empty command. */
int ks_split_words(const char *command, char ***argv, ks_err *err);
void ks_words_free(char **argv);

/* Runs `command` (`what` names it in messages) with keysvc's environment
 * plus `vars`, standard input from /dev/null, its standard output captured
 * into *output (caller frees; NULL to discard), its standard error passed
 * through.  A hook still running after timeout_s seconds is killed with
 * its process group.  Returns 0 when it exited 0, else -1 with err naming
 * the hook and its exit status or signal; *output is set in both cases
 * (NULL only when the command could not be split). */
int ks_hook_run(const char *what, const char *command, const ks_hook_var *vars, size_t n_vars,
                int timeout_s, char **output, ks_err *err);

/* acmebot's hook templates ("/usr/local/bin/set {domain} {challenge}"):
 * the template is split into words first, then "{field}" in each word is
 * replaced by the field's value, which so stays inside its one argument
 * whatever it holds.  "{{" and "}}" are literal braces, as in Python's
 * str.format.  An unknown field is an error.  *argv as ks_split_words. */
#define KS_HOOK_MAX_FIELDS 12
int ks_template_argv(const char *tmpl, const ks_hook_var *fields, size_t n, char ***argv,
                     ks_err *err);

/* Runs a template (as ks_hook_run runs a command), with each field also in
 * the environment as KEYSVC_<FIELD> (upper case). */
int ks_hook_run_template(const char *what, const char *tmpl, const ks_hook_var *fields,
                         size_t n, int timeout_s, char **output, ks_err *err);

#endif
