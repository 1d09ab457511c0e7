/*
 * console_guard.h -- who may use `creditsctl console`, and how: the
 * address it listens on (loopback unless allowed otherwise), the Host a
 * request names (an address, never a name a page of another site could
 * point at it), and for actions the Origin, Sec-Fetch-Site and the token
 * (compared in constant time; logged only as a fingerprint).
 *
 * Owns these decisions only; pure (no I/O): the caller extracts the header
 * fields and answers with the verdict. The request's reading is httpd.h's.
 */
#ifndef CREDITS_WORKER_CTL_CONSOLE_GUARD_H
#define CREDITS_WORKER_CTL_CONSOLE_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "queue/sha256.h"

/* A token shorter than this is guessable; longer than the max is a
 * mistake (a file pasted whole). */
#define CONSOLE_TOKEN_BYTES_MIN 16
#define CONSOLE_TOKEN_BYTES_MAX 256
/* 12 hex digits of SHA-256: tells two tokens apart in the audit log,
 * says nothing usable about either. */
#define CONSOLE_FINGERPRINT_HEX 12
#define CONSOLE_FINGERPRINT_BYTES (CONSOLE_FINGERPRINT_HEX + 1)
/* "[v6 address]:port" */
#define CONSOLE_ADDR_BYTES_MAX 64
/* The header that carries the token: a page of another site can send it
 * only after a CORS preflight, which the console never grants. */
#define CONSOLE_TOKEN_HEADER "X-Console-Token"

/* The address to listen on, as given. */
struct console_listen {
    char addr[CONSOLE_ADDR_BYTES_MAX + 1]; /* "127.0.0.1:9465", "[::1]:9465" */
    char host[CONSOLE_ADDR_BYTES_MAX + 1]; /* the IP address, without brackets */
    int port;
    bool loopback; /* 127.0.0.0/8 or ::1 */
};

/* Parses "IPv4:port" or "[IPv6]:port" (an address, not a name: what is
 * bound is what was checked). 0, or -1 with a message in errstr. */
int console_listen_parse(const char *addr, struct console_listen *out, char *errstr,
                         size_t errstr_len) __attribute__((warn_unused_result));

/* The token of CREDITS_CONSOLE_TOKEN, kept as its digest only. */
struct console_token {
    bool set;
    uint8_t digest[SHA256_DIGEST_BYTES];
    char fingerprint[CONSOLE_FINGERPRINT_BYTES];
};

/* Keeps `secret` (borrowed until return): 0, or -1 with errstr when it is
 * not CONSOLE_TOKEN_BYTES_MIN..MAX printable ASCII characters. */
int console_token_init(struct console_token *t, const char *secret, char *errstr, size_t errstr_len)
    __attribute__((warn_unused_result));

/* Whether `len` bytes given (borrowed) are the token: the digests are
 * compared in constant time, so the time taken says nothing about how
 * much of a guess was right. False when no token is set. */
bool console_token_matches(const struct console_token *t, const char *given, size_t len);

/* The fingerprint of `len` bytes (a token given, right or wrong): the first
 * hex digits of their SHA-256; "none" when len is 0. */
void console_token_fingerprint(const char *given, size_t len, char out[CONSOLE_FINGERPRINT_BYTES]);

/* One header field of a request: how often it came, the first value. */
struct console_field {
    int count; /* 0, 1, or 2 for "more than once" */
    const char *value;
    size_t len;
};

/* What a request asks for. */
enum console_request_kind {
    CONSOLE_REQUEST_PAGE,   /* the page and its assets: nothing to protect but the Host */
    CONSOLE_REQUEST_READ,   /* the API's reads */
    CONSOLE_REQUEST_ACTION, /* a change: retry, drop, a catalog edit */
};

/* What a request says that the guard looks at. */
struct console_facts {
    enum console_request_kind kind;
    struct console_field host;
    struct console_field origin;
    struct console_field fetch_site; /* Sec-Fetch-Site */
    struct console_field token;      /* CONSOLE_TOKEN_HEADER */
};

struct console_guard {
    bool actions;         /* --allow-actions */
    bool token_for_reads; /* every request needs the token (not only actions) */
    struct console_token token;
};

enum console_verdict {
    CONSOLE_ALLOWED,
    CONSOLE_BAD_HOST,    /* Host missing, twice, or a name */
    CONSOLE_ACTIONS_OFF, /* an action, without --allow-actions */
    CONSOLE_BAD_ORIGIN,  /* an action whose Origin is not this console */
    CONSOLE_CROSS_SITE,  /* an action the browser says came from elsewhere */
    CONSOLE_NO_TOKEN,    /* the token header is missing or twice */
    CONSOLE_WRONG_TOKEN,
};

/*
 * The verdict on a request: its Host must name an IP address or
 * "localhost" (a page of another site reaching the console through its own
 * DNS name, DNS rebinding, names itself); an action needs --allow-actions,
 * an Origin equal to "http://" and the Host, a Sec-Fetch-Site of
 * "same-origin" when the browser sends one, and the token; with
 * token_for_reads every read of the API needs the token too (the page
 * itself never does: it asks for the token). Pure.
 */
enum console_verdict console_guard_check(const struct console_guard *g,
                                         const struct console_facts *f);

/* A sentence for people saying why a request was refused. */
const char *console_verdict_text(enum console_verdict verdict);

/* The verdict's short name for the audit log ("wrong_token"). */
const char *console_verdict_name(enum console_verdict verdict);

/* Whether `len` bytes of a Host value name an address of the loopback or
 * any IP address, or "localhost", with an optional ":port". Pure. */
bool console_host_is_address(const char *host, size_t len);

#endif
