/*
 * Helpers shared by the libFuzzer targets: NUL-terminated copies of the
 * input (the parsers take C strings) and a hard stop on a broken invariant.
 */
#ifndef KEYSVC_FUZZ_COMMON_H
#define KEYSVC_FUZZ_COMMON_H

#include "ks_log.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* A NUL-terminated copy of the input (caller frees).  Bytes after an
 * embedded NUL are kept but unseen by string parsers, as in a real body. */
static inline char *fuzz_cstr_new(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s == NULL)
        abort();
    if (size > 0)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* A property the parser promises does not hold: report and crash, so that
 * libFuzzer keeps the input. */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Warnings about hostile input are the expected outcome; keep the fuzzer's
 * output readable. */
static inline void fuzz_quiet_logs(void)
{
    ks_log_set_level(KS_LOG_ERROR);
}

/* Every target is one translation unit, which includes this header once:
 * the shared start-up is defined here. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_quiet_logs();
    return 0;
}

#endif
