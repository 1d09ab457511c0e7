/*
 * console.c -- `creditsctl console` (console.h): options and start-up
 * checks, the event loop, and each request: its Host, Origin and token
 * checked (console_guard.h), the page or an asset served, or the API
 * called (console_api.h), every action written to the audit log.
 */
#include "worker/ctl/console.h"

#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/assert.h"
#include "worker/common/httpd.h"
#include "worker/common/log.h"
#include "worker/ctl/console_api.h"
#include "worker/ctl/console_guard.h"
#include "worker/ctl/console_probe.h"
#include "worker/ctl/console_text.h"
#include "worker/ctl/json_out.h"

#define CONSOLE_TOKEN_ENV "CREDITS_CONSOLE_TOKEN"
#define CONSOLE_JSON_TYPE "application/json; charset=utf-8"
#define CONSOLE_LOG_TEXT_BYTES 400

/* Sent with every answer: the page runs its own script and style only,
 * talks to this origin only, is never framed, sends no Referer. */
static const char security_headers[] =
    "Content-Security-Policy: default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'\r\n"
    "X-Content-Type-Options: nosniff\r\n"
    "X-Frame-Options: DENY\r\n"
    "Referrer-Policy: no-referrer\r\n"
    "Cross-Origin-Opener-Policy: same-origin\r\n"
    "Cross-Origin-Resource-Policy: same-origin\r\n";

struct console {
    struct console_listen listen;
    struct console_guard guard;
    struct console_api api;
    struct console_worker workers[CONSOLE_WORKERS_MAX];
    char *page; /* the page, rendered once */
    size_t page_len;
    struct event_base *base;
};

/* ------------------------------------------------------------------------ */
/* Answers                                                                  */
/* ------------------------------------------------------------------------ */

static void respond_json_error(struct httpd_reply *reply, int code, const char *headers,
                               const char *message)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    ASSERT(out != NULL);
    struct json j;
    json_init_script_safe(&j, out);
    json_object_begin(&j, NULL);
    json_str(&j, "error", message);
    json_object_end(&j);
    json_finish(&j);
    ASSERT(fclose(out) == 0);
    httpd_respond(reply, code, CONSOLE_JSON_TYPE, headers, text, len);
    free(text);
}

static const struct console_asset *asset_named(const char *path)
{
    for (size_t i = 0; i < console_assets_count; i++)
        if (strcmp(console_assets[i].path, path) == 0)
            return &console_assets[i];
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* The audit log                                                            */
/* ------------------------------------------------------------------------ */

/* One line per action, whatever came of it: who (the peer and the
 * fingerprint of the token it sent), what, and the outcome; when is the
 * line's ts. */
static void audit(const struct httpd_request *req, const struct console_facts *facts,
                  const struct console_route *route, const char *outcome, int status,
                  const char *what, const char *why)
{
    char fingerprint[CONSOLE_FINGERPRINT_BYTES];
    char what_q[CONSOLE_LOG_TEXT_BYTES], why_q[CONSOLE_LOG_TEXT_BYTES];
    console_token_fingerprint(facts->token.count == 1 ? facts->token.value : NULL,
                              facts->token.count == 1 ? facts->token.len : 0, fingerprint);
    log_event(status == 200 ? LOG_INFO : LOG_WARN, "console_action",
              "peer=%s token=%s action=%s what=%s outcome=%s status=%d why=%s", req->peer,
              fingerprint, route->name, log_quote(what, what_q, sizeof what_q), outcome, status,
              log_quote(why, why_q, sizeof why_q));
}

/* ------------------------------------------------------------------------ */
/* Requests                                                                 */
/* ------------------------------------------------------------------------ */

static struct console_field field_of(const struct httpd_request *req, const char *name)
{
    struct console_field f = {0, NULL, 0};
    enum httpd_field_count n = httpd_field(req, name, &f.value, &f.len);
    f.count = n == HTTPD_FIELD_ABSENT ? 0 : n == HTTPD_FIELD_ONE ? 1 : 2;
    return f;
}

static struct console_facts facts_of(const struct httpd_request *req,
                                     enum console_request_kind kind)
{
    struct console_facts f = {
        .kind = kind,
        .host = field_of(req, "Host"),
        .origin = field_of(req, "Origin"),
        .fetch_site = field_of(req, "Sec-Fetch-Site"),
        .token = field_of(req, CONSOLE_TOKEN_HEADER),
    };
    return f;
}

static void serve_page(struct console *con, const struct httpd_request *req,
                       struct httpd_reply *reply)
{
    const struct console_asset *asset = strcmp(req->path, "/") == 0 ? NULL : asset_named(req->path);
    if (strcmp(req->path, "/") != 0 && (!asset || strcmp(req->path, "/index.html") == 0)) {
        respond_json_error(reply, 404, NULL, "no such page: try /");
        return;
    }
    if (req->method != HTTPD_GET && req->method != HTTPD_HEAD) {
        respond_json_error(reply, 405, "Allow: GET, HEAD\r\n", "only GET and HEAD");
        return;
    }
    struct console_facts facts = facts_of(req, CONSOLE_REQUEST_PAGE);
    enum console_verdict verdict = console_guard_check(&con->guard, &facts);
    if (verdict != CONSOLE_ALLOWED)
        respond_json_error(reply, 403, NULL, console_verdict_text(verdict));
    else if (!asset)
        httpd_respond(reply, 200, "text/html; charset=utf-8", NULL, con->page, con->page_len);
    else
        httpd_respond(reply, 200, asset->type, NULL, (const char *)asset->bytes, asset->len);
}

static void serve_api(struct console *con, const struct httpd_request *req,
                      struct httpd_reply *reply, const struct console_route *route)
{
    bool action = route->kind == CONSOLE_ROUTE_ACTION;
    bool method_ok =
        action ? req->method == HTTPD_POST : req->method == HTTPD_GET || req->method == HTTPD_HEAD;
    if (!method_ok) {
        respond_json_error(reply, 405, action ? "Allow: POST\r\n" : "Allow: GET, HEAD\r\n",
                           action ? "this changes something: POST only"
                                  : "this only reads: GET or HEAD");
        return;
    }
    struct console_facts facts =
        facts_of(req, action ? CONSOLE_REQUEST_ACTION : CONSOLE_REQUEST_READ);
    enum console_verdict verdict = console_guard_check(&con->guard, &facts);
    if (verdict != CONSOLE_ALLOWED) {
        if (action)
            audit(req, &facts, route, "refused", 403, req->query, console_verdict_name(verdict));
        respond_json_error(reply, 403, NULL, console_verdict_text(verdict));
        return;
    }
    struct console_outcome outcome;
    console_api_call(&con->api, route, req->query, &outcome);
    if (action)
        audit(req, &facts, route, outcome.status == 200 ? "done" : "failed", outcome.status,
              outcome.what[0] ? outcome.what : req->query, outcome.error);
    httpd_respond(reply, outcome.status, CONSOLE_JSON_TYPE, NULL, outcome.body, outcome.body_len);
    free(outcome.body);
}

static void handle(void *arg, const struct httpd_request *req, struct httpd_reply *reply)
{
    struct console *con = arg;
    if (req->query_too_long) {
        respond_json_error(reply, 414, NULL, "the query string is too long");
        return;
    }
    const struct console_route *route = console_api_route(req->path);
    if (route)
        serve_api(con, req, reply, route);
    else if (strncmp(req->path, "/api/", 5) == 0)
        respond_json_error(reply, 404, NULL, "no such API path");
    else
        serve_page(con, req, reply);
}

/* ------------------------------------------------------------------------ */
/* Start-up                                                                 */
/* ------------------------------------------------------------------------ */

/*
 * Takes every "--worker URL" and "--worker=URL" before a "--" out of
 * argv (the option may repeat, which opt.h's grammar does not allow), in
 * order, into urls[]. CTL_CONTINUE, or CTL_USAGE after a message.
 */
static int take_workers(struct ctl *ctl, int *argc, char **argv, const char **urls, size_t *count)
{
    int kept = 0;
    bool options = true;
    *count = 0;
    for (int i = 0; i < *argc; i++) {
        const char *arg = argv[i];
        if (options && strcmp(arg, "--") == 0)
            options = false;
        bool bare = options && strcmp(arg, "--worker") == 0;
        bool joined = options && strncmp(arg, "--worker=", 9) == 0;
        if (!bare && !joined) {
            argv[kept++] = argv[i];
            continue;
        }
        if (bare && i + 1 >= *argc)
            return ctl_usage_error(ctl, "--worker needs a value");
        if (*count == CONSOLE_WORKERS_MAX)
            return ctl_usage_error(ctl, "--worker may be given at most %d times",
                                   CONSOLE_WORKERS_MAX);
        urls[(*count)++] = bare ? argv[++i] : arg + 9;
    }
    *argc = kept;
    return CTL_CONTINUE;
}

/* The token, when the settings need one. CTL_CONTINUE or CTL_USAGE. */
static int read_token(struct ctl *ctl, struct console *con, bool needed, const char *why)
{
    const char *secret = getenv(CONSOLE_TOKEN_ENV);
    if (!secret || !secret[0]) {
        if (!needed)
            return CTL_CONTINUE;
        ctl_failure(ctl, "%s needs %s, the token the page sends with each action", why,
                    CONSOLE_TOKEN_ENV);
        return CTL_USAGE;
    }
    if (console_token_init(&con->guard.token, secret, ctl->errstr, sizeof ctl->errstr) != 0) {
        ctl_failure(ctl, "%s", ctl->errstr);
        return CTL_USAGE;
    }
    return CTL_CONTINUE;
}

/* Renders the page once: its title and what it needs to know at once. */
static void render_page(struct console *con)
{
    const struct console_asset *tpl = asset_named("/index.html");
    ASSERT(tpl != NULL);
    char *boot = NULL, *title = NULL;
    size_t boot_len = 0, title_len = 0;
    FILE *out = open_memstream(&boot, &boot_len);
    ASSERT(out != NULL);
    console_api_boot_json(&con->api, out);
    ASSERT(fclose(out) == 0);
    out = open_memstream(&title, &title_len);
    ASSERT(out != NULL);
    fprintf(out, "credits console (%s)", con->api.config->prefix);
    ASSERT(fclose(out) == 0);
    out = open_memstream(&con->page, &con->page_len);
    ASSERT(out != NULL);
    bool ok = console_render_page(out, (const char *)tpl->bytes, tpl->len, title, boot);
    ASSERT(fclose(out) == 0);
    ASSERT(ok); /* the template is ours: a marker missing is a bug of the build */
    free(boot);
    free(title);
}

static void on_signal(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct console *con = arg;
    log_event(LOG_INFO, "console_stopping", NULL);
    event_base_loopexit(con->base, NULL);
}

/* Serves until SIGTERM or SIGINT. */
static int serve(struct ctl *ctl, struct console *con)
{
    con->base = event_base_new();
    ASSERT(con->base != NULL);
    const struct httpd_config config = {
        .addr = con->listen.addr,
        .addr_setting = "--listen",
        .connections_max = CONSOLE_CONNECTIONS_MAX,
        .deadline_ms = CONSOLE_DEADLINE_MS,
        .body_bytes_max = CONSOLE_BODY_BYTES_MAX,
        .headers = security_headers,
        .handle = handle,
        .arg = con,
    };
    struct httpd *httpd = httpd_start(con->base, &config, ctl->errstr, sizeof ctl->errstr);
    if (!httpd) {
        event_base_free(con->base);
        return ctl_failure(ctl, "%s", ctl->errstr);
    }
    struct event *term = evsignal_new(con->base, SIGTERM, on_signal, con);
    struct event *intr = evsignal_new(con->base, SIGINT, on_signal, con);
    ASSERT(term && intr);
    event_add(term, NULL);
    event_add(intr, NULL);
    signal(SIGPIPE, SIG_IGN);
    log_event(LOG_INFO, "console_started",
              "listen=%s url=http://%s/ actions=%s token_for_reads=%s workers=%zu prefix=%s",
              con->listen.addr, con->listen.addr, con->guard.actions ? "on" : "off",
              con->guard.token_for_reads ? "on" : "off", con->api.worker_count,
              con->api.config->prefix);
    event_base_dispatch(con->base);
    event_free(term);
    event_free(intr);
    httpd_free(httpd);
    event_base_free(con->base);
    return CTL_OK;
}

/* console [--listen ADDR] [--allow-remote] [--allow-actions] [--worker URL]... */
static int cmd_console(struct ctl *ctl, int argc, char **argv)
{
    const char *urls[CONSOLE_WORKERS_MAX];
    size_t url_count = 0;
    int rc = take_workers(ctl, &argc, argv, urls, &url_count);
    if (rc != CTL_CONTINUE)
        return rc;
    const char *listen = CONSOLE_LISTEN_DEFAULT;
    bool actions = false, remote = false;
    const struct opt opts[] = {{"listen", &listen, NULL, false},
                               {"allow-actions", NULL, &actions, false},
                               {"allow-remote", NULL, &remote, false},
                               CTL_OPT_END};
    const char *const names[] = {NULL};
    rc = ctl_parse_args(ctl, argc, argv, opts, names, NULL);
    if (rc != CTL_CONTINUE)
        return rc;
    struct console *con = calloc(1, sizeof *con);
    ASSERT(con != NULL);
    if (console_listen_parse(listen, &con->listen, ctl->errstr, sizeof ctl->errstr) != 0)
        rc = ctl_usage_error(ctl, "%s", ctl->errstr);
    else if (!con->listen.loopback && !remote)
        rc = ctl_usage_error(ctl,
                             "%s is not a loopback address: the console shows every user's "
                             "ledger; add --allow-remote to listen there (every request then "
                             "needs %s)",
                             con->listen.addr, CONSOLE_TOKEN_ENV);
    for (size_t i = 0; rc == CTL_CONTINUE && i < url_count; i++)
        if (console_worker_parse(urls[i], &con->workers[i], ctl->errstr, sizeof ctl->errstr) != 0)
            rc = ctl_usage_error(ctl, "%s", ctl->errstr);
    if (rc == CTL_CONTINUE)
        rc = ctl_load_config(ctl) == CTL_OK ? CTL_CONTINUE : CTL_USAGE;
    if (rc == CTL_CONTINUE)
        rc =
            read_token(ctl, con, actions || remote, actions ? "--allow-actions" : "--allow-remote");
    if (rc != CTL_CONTINUE) {
        free(con);
        return rc;
    }
    log_set_level(ctl->config.log_level);
    log_set_format(ctl->config.log_format);
    con->guard.actions = actions;
    con->guard.token_for_reads = remote;
    con->api = (struct console_api){
        .config = &ctl->config,
        .workers = con->workers,
        .worker_count = url_count,
        .actions = actions,
        .token_for_reads = remote,
        .listen = con->listen.addr,
    };
    render_page(con);
    rc = serve(ctl, con);
    console_api_close(&con->api);
    free(con->page);
    free(con);
    return rc;
}

/* clang-format off */
const struct command console_command = {
    "console", "serve the operator's console in the browser",
    "console [--listen ADDR] [--worker URL]... [--allow-actions] [--allow-remote]",
    "Serves the operator's console, a page for the browser with its own JSON API:\n"
    "the job streams (length, pending entries and the oldest one's age, consumers\n"
    "and their idle time), dead letters by reason and one by one (decoded, their\n"
    "bytes in hex), the workers' /readyz and /metrics, the newest results and\n"
    "events; a user's balance, lots, open holds, history with each job's detail,\n"
    "and events; a job by ID (its stored decision, entries, events, and where its\n"
    "result is in Redis); the catalog. The page and its script are built into creditsctl:\n"
    "no network is needed. Stops on SIGTERM or SIGINT.\n\n"
    "Read-only unless --allow-actions: then retrying and dropping dead letters\n"
    "and editing the catalog are allowed to whoever sends CREDITS_CONSOLE_TOKEN\n"
    "(16 to 256 printable characters; the page asks for it) from the console's\n"
    "own page; each action is one line on stderr (event=console_action: the\n"
    "peer, the token's fingerprint, what, the outcome). Give it a database role\n"
    "of its own (a member of credits_reader is enough to read; catalog edits need\n"
    "credits_owner) and a Redis user of its own (credits-console in\n"
    "deploy/redis/users.acl).\n\n"
    "  --listen ADDR     IP address and port (default " CONSOLE_LISTEN_DEFAULT "); an\n"
    "                    address other than loopback needs --allow-remote\n"
    "  --worker URL      a worker's HTTP endpoint, http://127.0.0.1:9464, whose\n"
    "                    /readyz and /metrics the overview shows; repeatable (8)\n"
    "  --allow-actions   allow retry, drop and catalog edits (needs the token)\n"
    "  --allow-remote    listen on a non-loopback address; every request then\n"
    "                    needs the token (use an SSH tunnel or a TLS proxy)\n",
    cmd_console};
/* clang-format on */
