/*
 * console_guard.c -- the console's rules of who may do what (console_guard.h):
 * listen addresses, Host and Origin checks, the token. Pure.
 */
#include "worker/ctl/console_guard.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "core/assert.h"

/* ------------------------------------------------------------------------ */
/* Addresses                                                                */
/* ------------------------------------------------------------------------ */

/* 1 to 5 digits, 1..65535; -1 otherwise. */
static int parse_port(const char *s, size_t len)
{
    if (len == 0 || len > 5)
        return -1;
    int port = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        port = port * 10 + (s[i] - '0');
    }
    return port >= 1 && port <= 65535 ? port : -1;
}

/* `len` bytes as an address of `family` (AF_INET, AF_INET6) into out. */
static bool parse_ip(int family, const char *s, size_t len, void *out)
{
    char text[CONSOLE_ADDR_BYTES_MAX + 1];
    if (len == 0 || len > CONSOLE_ADDR_BYTES_MAX || memchr(s, '\0', len))
        return false;
    memcpy(text, s, len);
    text[len] = '\0';
    return inet_pton(family, text, out) == 1;
}

int console_listen_parse(const char *addr, struct console_listen *out, char *errstr,
                         size_t errstr_len)
{
    ASSERT(addr && out && errstr);
    memset(out, 0, sizeof *out);
    size_t len = strlen(addr);
    const char *host = addr, *colon = NULL;
    size_t host_len = 0;
    bool v6 = addr[0] == '[';
    if (v6) {
        const char *close = strchr(addr, ']');
        colon = close && close[1] == ':' ? close + 1 : NULL;
        host = addr + 1;
        host_len = close ? (size_t)(close - host) : 0;
    } else {
        colon = strrchr(addr, ':');
        host_len = colon ? (size_t)(colon - addr) : 0;
    }
    int port = colon ? parse_port(colon + 1, len - (size_t)(colon + 1 - addr)) : -1;
    unsigned char ip[sizeof(struct in6_addr)];
    if (len > CONSOLE_ADDR_BYTES_MAX || port < 0 ||
        !parse_ip(v6 ? AF_INET6 : AF_INET, host, host_len, ip)) {
        snprintf(errstr, errstr_len,
                 "--listen takes an IP address and a port, like 127.0.0.1:9465 or [::1]:9465 "
                 "(got \"%.*s\")",
                 CONSOLE_ADDR_BYTES_MAX, addr);
        return -1;
    }
    memcpy(out->addr, addr, len + 1);
    memcpy(out->host, host, host_len);
    out->host[host_len] = '\0';
    out->port = port;
    out->loopback = v6 ? IN6_IS_ADDR_LOOPBACK((struct in6_addr *)ip) : ip[0] == 127;
    return 0;
}

bool console_host_is_address(const char *host, size_t len)
{
    ASSERT(host != NULL || len == 0);
    const char *end = host + len, *port = NULL;
    unsigned char ip[sizeof(struct in6_addr)];
    bool ok;
    if (len > 0 && host[0] == '[') {
        const char *close = memchr(host, ']', len);
        if (!close)
            return false;
        ok = parse_ip(AF_INET6, host + 1, (size_t)(close - host - 1), ip);
        port = close + 1 < end ? close + 1 : NULL;
        if (port && *port != ':')
            return false;
    } else {
        const char *colon = memchr(host, ':', len);
        size_t name_len = colon ? (size_t)(colon - host) : len;
        ok = (name_len == strlen("localhost") && strncasecmp(host, "localhost", name_len) == 0) ||
             parse_ip(AF_INET, host, name_len, ip);
        port = colon;
    }
    return ok && (!port || parse_port(port + 1, (size_t)(end - port - 1)) > 0);
}

/* ------------------------------------------------------------------------ */
/* The token                                                                */
/* ------------------------------------------------------------------------ */

int console_token_init(struct console_token *t, const char *secret, char *errstr, size_t errstr_len)
{
    ASSERT(t && secret && errstr);
    memset(t, 0, sizeof *t);
    size_t len = strlen(secret);
    bool printable = true;
    for (size_t i = 0; i < len; i++)
        printable = printable && secret[i] > 0x20 && secret[i] < 0x7F;
    if (len < CONSOLE_TOKEN_BYTES_MIN || len > CONSOLE_TOKEN_BYTES_MAX || !printable) {
        snprintf(errstr, errstr_len,
                 "CREDITS_CONSOLE_TOKEN must be %d to %d printable ASCII characters without "
                 "spaces (e.g. 'openssl rand -hex 24')",
                 CONSOLE_TOKEN_BYTES_MIN, CONSOLE_TOKEN_BYTES_MAX);
        return -1;
    }
    sha256_digest(secret, len, t->digest);
    console_token_fingerprint(secret, len, t->fingerprint);
    t->set = true;
    return 0;
}

bool console_token_matches(const struct console_token *t, const char *given, size_t len)
{
    ASSERT(t != NULL && (given != NULL || len == 0));
    if (!t->set || len == 0 || len > CONSOLE_TOKEN_BYTES_MAX)
        return false;
    uint8_t digest[SHA256_DIGEST_BYTES];
    sha256_digest(given, len, digest);
    /* Every byte is compared whatever the ones before it were. */
    volatile uint8_t differ = 0;
    for (size_t i = 0; i < SHA256_DIGEST_BYTES; i++)
        differ |= (uint8_t)(digest[i] ^ t->digest[i]);
    return differ == 0;
}

void console_token_fingerprint(const char *given, size_t len, char out[CONSOLE_FINGERPRINT_BYTES])
{
    ASSERT(out != NULL && (given != NULL || len == 0));
    if (len == 0) {
        snprintf(out, CONSOLE_FINGERPRINT_BYTES, "none");
        return;
    }
    uint8_t digest[SHA256_DIGEST_BYTES];
    char hex[SHA256_HEX_BYTES + 1];
    sha256_digest(given, len, digest);
    sha256_hex(digest, hex);
    memcpy(out, hex, CONSOLE_FINGERPRINT_HEX);
    out[CONSOLE_FINGERPRINT_HEX] = '\0';
}

/* ------------------------------------------------------------------------ */
/* Requests                                                                 */
/* ------------------------------------------------------------------------ */

/* The Origin of a page served from the Host the request names. */
static bool origin_is_host(const struct console_field *origin, const struct console_field *host)
{
    static const char scheme[] = "http://";
    size_t n = sizeof scheme - 1;
    return origin->count == 1 && host->count == 1 && origin->len == n + host->len &&
           strncasecmp(origin->value, scheme, n) == 0 &&
           strncasecmp(origin->value + n, host->value, host->len) == 0;
}

static enum console_verdict token_verdict(const struct console_guard *g,
                                          const struct console_field *token)
{
    if (token->count != 1 || token->len == 0)
        return CONSOLE_NO_TOKEN;
    return console_token_matches(&g->token, token->value, token->len) ? CONSOLE_ALLOWED
                                                                      : CONSOLE_WRONG_TOKEN;
}

enum console_verdict console_guard_check(const struct console_guard *g,
                                         const struct console_facts *f)
{
    ASSERT(g && f);
    ASSERT(!g->actions || g->token.set);
    ASSERT(!g->token_for_reads || g->token.set);
    if (f->host.count != 1 || !console_host_is_address(f->host.value, f->host.len))
        return CONSOLE_BAD_HOST;
    if (f->kind == CONSOLE_REQUEST_PAGE)
        return CONSOLE_ALLOWED;
    if (f->kind == CONSOLE_REQUEST_READ)
        return g->token_for_reads ? token_verdict(g, &f->token) : CONSOLE_ALLOWED;
    if (!g->actions)
        return CONSOLE_ACTIONS_OFF;
    if (!origin_is_host(&f->origin, &f->host))
        return CONSOLE_BAD_ORIGIN;
    if (f->fetch_site.count > 1 ||
        (f->fetch_site.count == 1 &&
         !(f->fetch_site.len == strlen("same-origin") &&
           strncasecmp(f->fetch_site.value, "same-origin", f->fetch_site.len) == 0)))
        return CONSOLE_CROSS_SITE;
    return token_verdict(g, &f->token);
}

const char *console_verdict_text(enum console_verdict verdict)
{
    switch (verdict) {
    case CONSOLE_ALLOWED:
        return "allowed";
    case CONSOLE_BAD_HOST:
        return "the Host header must name this console by its IP address or localhost";
    case CONSOLE_ACTIONS_OFF:
        return "actions are off: this console was started without --allow-actions";
    case CONSOLE_BAD_ORIGIN:
        return "an action must come from this console's own page (its Origin header)";
    case CONSOLE_CROSS_SITE:
        return "an action must come from this console's own page (Sec-Fetch-Site)";
    case CONSOLE_NO_TOKEN:
        return "this needs the console's token (CREDITS_CONSOLE_TOKEN) in the "
               "X-Console-Token header: enter it on the page";
    case CONSOLE_WRONG_TOKEN:
        return "the token is wrong";
    }
    UNREACHABLE();
}

const char *console_verdict_name(enum console_verdict verdict)
{
    switch (verdict) {
    case CONSOLE_ALLOWED:
        return "allowed";
    case CONSOLE_BAD_HOST:
        return "bad_host";
    case CONSOLE_ACTIONS_OFF:
        return "actions_off";
    case CONSOLE_BAD_ORIGIN:
        return "bad_origin";
    case CONSOLE_CROSS_SITE:
        return "cross_site";
    case CONSOLE_NO_TOKEN:
        return "no_token";
    case CONSOLE_WRONG_TOKEN:
        return "wrong_token";
    }
    UNREACHABLE();
}
