/*
 * opt.h -- creditsctl's command-line grammar, without I/O: long options
 * (--name VALUE, --name=VALUE, flags), "--" ending them, --help and -h,
 * positional arguments, and whole-number values within bounds.
 *
 * Owns what an argument list means and the words of each usage error. Does
 * not own the commands, their help, or where a message goes (ctl.c).
 */
#ifndef CREDITS_WORKER_CTL_OPT_H
#define CREDITS_WORKER_CTL_OPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Options of one command; the most any has is 7. */
#define OPT_COUNT_MAX 12

/* A long option: --name VALUE, --name=VALUE, or a flag --name. */
struct opt {
    const char *name;   /* without the leading "--"; NULL ends a list */
    const char **value; /* receives the value (borrowed from argv); NULL: a flag */
    bool *flag;         /* a flag: set to true when given */
    bool required;
};

enum opt_status {
    OPT_PARSED, /* every argument taken: the command goes on */
    OPT_HELP,   /* --help or -h came before any "--" or usage error */
    OPT_BAD,    /* a usage error, described by the opt_error */
};

/* What was wrong, one value per message. */
enum opt_problem {
    OPT_NONE,               /* nothing */
    OPT_SHORT_UNKNOWN,      /* "-x": unknown option '-x' */
    OPT_LONG_UNKNOWN,       /* unknown option '--name' */
    OPT_GIVEN_TWICE,        /* --name given twice */
    OPT_VALUE_UNWANTED,     /* --flag=value: --flag takes no value */
    OPT_VALUE_MISSING,      /* --name at the end: --name needs a value */
    OPT_UNEXPECTED,         /* one positional too many: unexpected argument 'x' */
    OPT_MISSING_POSITIONAL, /* missing NAME */
    OPT_MISSING_OPTION,     /* missing --name */
    OPT_NOT_WHOLE_NUMBER,   /* --n must be a whole number [from min to max] (got "x") */
};

/* A usage error. Its strings are borrowed from argv and the option and
 * positional tables: valid as long as they are. */
struct opt_error {
    enum opt_problem problem;
    const char *text;  /* the argument at fault, or the option's or positional's name */
    size_t text_len;   /* of text */
    const char *given; /* OPT_NOT_WHOLE_NUMBER: the value given */
    int64_t min;       /* OPT_NOT_WHOLE_NUMBER: the bounds */
    int64_t max;
};

/* Whether `arg` asks for help: "--help" or "-h". */
bool opt_is_help(const char *arg);

/*
 * Reads argv[0..argc): options into `opts` (ended by a NULL name, at most
 * OPT_COUNT_MAX), and exactly as many positionals as `names` holds
 * (NULL-terminated, all required) into positional[]. Stops at the first
 * usage error or help request, in argument order; values already read stay
 * set. Borrows everything until return; the values point into argv.
 */
enum opt_status opt_parse(int argc, char **argv, const struct opt *opts, const char *const *names,
                          const char **positional, struct opt_error *error)
    __attribute__((warn_unused_result));

/* `text`, the value of `flag` ("--limit"), as a decimal whole number in
 * [min, max] (no spaces, no '+'): true with *out set, or false with *error
 * describing it. */
bool opt_int64(const char *flag, const char *text, int64_t min, int64_t max, int64_t *out,
               struct opt_error *error) __attribute__((warn_unused_result));

/* Writes the message of `error` (no newline) to `out`. */
void opt_error_print(const struct opt_error *error, FILE *out);

#endif
