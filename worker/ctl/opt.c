/*
 * opt.c -- creditsctl's command-line grammar (opt.h).
 *
 * Owns reading an argument list against an option table and the words of
 * each usage error. Does not own printing help or where a message goes.
 */
#include "worker/ctl/opt.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"

bool opt_is_help(const char *arg)
{
    ASSERT(arg != NULL);
    return strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0;
}

static enum opt_status bad(struct opt_error *error, enum opt_problem problem, const char *text,
                           size_t text_len)
{
    ASSERT(error != NULL && text != NULL);
    ASSERT(problem != OPT_NONE && problem != OPT_NOT_WHOLE_NUMBER);
    *error = (struct opt_error){.problem = problem, .text = text, .text_len = text_len};
    return OPT_BAD;
}

static enum opt_status bad_text(struct opt_error *error, enum opt_problem problem, const char *text)
{
    ASSERT(text != NULL);
    return bad(error, problem, text, strlen(text));
}

/* The option argv[*i] names, recording it and consuming its value. */
static enum opt_status parse_option(const struct opt *opts, bool *seen, int argc, char **argv,
                                    int *i, struct opt_error *error)
{
    const char *arg = argv[*i];
    ASSERT(arg[0] == '-' && arg[1] != '\0');
    if (arg[1] != '-')
        return bad_text(error, OPT_SHORT_UNKNOWN, arg);
    const char *name = arg + 2;
    const char *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    size_t k = 0;
    while (opts[k].name && (strlen(opts[k].name) != len || strncmp(opts[k].name, name, len)))
        k++;
    if (!opts[k].name)
        return bad(error, OPT_LONG_UNKNOWN, name, len);
    if (seen[k])
        return bad_text(error, OPT_GIVEN_TWICE, opts[k].name);
    seen[k] = true;
    if (!opts[k].value) {
        if (eq)
            return bad_text(error, OPT_VALUE_UNWANTED, opts[k].name);
        ASSERT(opts[k].flag != NULL);
        *opts[k].flag = true;
        return OPT_PARSED;
    }
    if (!eq && *i + 1 >= argc)
        return bad_text(error, OPT_VALUE_MISSING, opts[k].name);
    *opts[k].value = eq ? eq + 1 : argv[++*i];
    return OPT_PARSED;
}

/* After the arguments: every positional and every required option given. */
static enum opt_status check_complete(const struct opt *opts, const bool *seen, size_t opt_count,
                                      const char *const *names, size_t got, size_t wanted,
                                      struct opt_error *error)
{
    ASSERT(got <= wanted);
    ASSERT(opt_count <= OPT_COUNT_MAX);
    if (got < wanted)
        return bad_text(error, OPT_MISSING_POSITIONAL, names[got]);
    for (size_t k = 0; k < opt_count; k++)
        if (opts[k].required && !seen[k])
            return bad_text(error, OPT_MISSING_OPTION, opts[k].name);
    *error = (struct opt_error){.problem = OPT_NONE};
    return OPT_PARSED;
}

enum opt_status opt_parse(int argc, char **argv, const struct opt *opts, const char *const *names,
                          const char **positional, struct opt_error *error)
{
    ASSERT(argc >= 0 && (argv != NULL || argc == 0));
    ASSERT(opts != NULL && names != NULL && error != NULL);
    size_t opt_count = 0;
    while (opts[opt_count].name)
        opt_count++;
    ASSERT(opt_count <= OPT_COUNT_MAX);
    size_t wanted = 0;
    while (names[wanted])
        wanted++;
    ASSERT(positional != NULL || wanted == 0);
    bool seen[OPT_COUNT_MAX] = {false};
    bool options_done = false;
    size_t got = 0;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (!options_done && opt_is_help(arg))
            return OPT_HELP;
        if (!options_done && strcmp(arg, "--") == 0) {
            options_done = true;
        } else if (options_done || arg[0] != '-' || arg[1] == '\0') {
            if (got == wanted)
                return bad_text(error, OPT_UNEXPECTED, arg);
            positional[got++] = arg;
        } else {
            enum opt_status status = parse_option(opts, seen, argc, argv, &i, error);
            if (status != OPT_PARSED)
                return status;
        }
    }
    return check_complete(opts, seen, opt_count, names, got, wanted, error);
}

/* A whole number in decimal and nothing else (no spaces, no '+'). */
static bool parse_int64(const char *text, int64_t min, int64_t max, int64_t *out)
{
    ASSERT(text != NULL && out != NULL);
    ASSERT(min <= max);
    const char *digits = text[0] == '-' ? text + 1 : text;
    if (digits[0] < '0' || digits[0] > '9')
        return false;
    char *end = NULL;
    errno = 0;
    long long value = strtoll(text, &end, 10);
    if (errno != 0 || *end != '\0' || value < min || value > max)
        return false;
    *out = value;
    return true;
}

bool opt_int64(const char *flag, const char *text, int64_t min, int64_t max, int64_t *out,
               struct opt_error *error)
{
    ASSERT(flag != NULL && text != NULL);
    ASSERT(out != NULL && error != NULL);
    if (parse_int64(text, min, max, out))
        return true;
    *error = (struct opt_error){.problem = OPT_NOT_WHOLE_NUMBER,
                                .text = flag,
                                .text_len = strlen(flag),
                                .given = text,
                                .min = min,
                                .max = max};
    return false;
}

void opt_error_print(const struct opt_error *error, FILE *out)
{
    ASSERT(error != NULL && out != NULL);
    ASSERT(error->text != NULL && error->text_len <= INT_MAX);
    int len = (int)error->text_len;
    const char *text = error->text;
    switch (error->problem) {
    case OPT_NONE:
        UNREACHABLE(); /* nothing to say: a caller's mistake */
    case OPT_SHORT_UNKNOWN:
        fprintf(out, "unknown option '%.*s'", len, text);
        return;
    case OPT_LONG_UNKNOWN:
        fprintf(out, "unknown option '--%.*s'", len, text);
        return;
    case OPT_GIVEN_TWICE:
        fprintf(out, "--%.*s given twice", len, text);
        return;
    case OPT_VALUE_UNWANTED:
        fprintf(out, "--%.*s takes no value", len, text);
        return;
    case OPT_VALUE_MISSING:
        fprintf(out, "--%.*s needs a value", len, text);
        return;
    case OPT_UNEXPECTED:
        fprintf(out, "unexpected argument '%.*s'", len, text);
        return;
    case OPT_MISSING_POSITIONAL:
        fprintf(out, "missing %.*s", len, text);
        return;
    case OPT_MISSING_OPTION:
        fprintf(out, "missing --%.*s", len, text);
        return;
    case OPT_NOT_WHOLE_NUMBER:
        ASSERT(error->given != NULL);
        if (error->min == INT64_MIN && error->max == INT64_MAX)
            fprintf(out, "%.*s must be a whole number (got \"%s\")", len, text, error->given);
        else
            fprintf(out, "%.*s must be a whole number from %lld to %lld (got \"%s\")", len, text,
                    (long long)error->min, (long long)error->max, error->given);
        return;
    }
    UNREACHABLE();
}
