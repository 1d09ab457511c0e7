/*
 * metrics.c -- updating and rendering the worker's metrics (metrics.h).
 *
 * Owns the bucket bounds and the text of every series. Does not own when
 * the numbers change (worker.c) or how the text is served (http.c).
 */
#include "worker/daemon/metrics.h"

#include <stddef.h>

#include "core/assert.h"

#define LABELS_MAX 3          /* credits_jobs_total has the most: type, status, error */
#define LABEL_NUMBER_BYTES 32 /* a bucket bound as text */

static const double latency_bounds_s[METRICS_LATENCY_BUCKETS] = {
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 60};

static const char *const peer_names[] = {
    [METRICS_REDIS] = "redis",
    [METRICS_POSTGRES] = "postgres",
};
static const char *const db_error_names[] = {
    [METRICS_DB_RETRY] = "retry",
    [METRICS_DB_FAILED] = "failed",
    [METRICS_DB_LOST] = "lost",
    [METRICS_DB_UNAVAILABLE] = "unavailable",
};
#define PEER_COUNT (sizeof peer_names / sizeof peer_names[0])
#define DB_ERROR_COUNT (sizeof db_error_names / sizeof db_error_names[0])
_Static_assert(sizeof((struct metrics *)NULL)->reconnects == PEER_COUNT * sizeof(uint64_t),
               "a name for every peer");
_Static_assert(sizeof((struct metrics *)NULL)->up == PEER_COUNT * sizeof(bool),
               "a name for every peer");
_Static_assert(sizeof((struct metrics *)NULL)->db_errors == DB_ERROR_COUNT * sizeof(uint64_t),
               "a name for every kind of database error");

void metrics_count_job(struct metrics *m, bool has_type, enum job_type type, enum job_error error,
                       bool replayed)
{
    ASSERT((int)error >= 0 && (int)error < JOB_ERROR_COUNT);
    size_t t = has_type ? (size_t)type : METRICS_TYPE_UNKNOWN;
    ASSERT(t <= METRICS_TYPE_UNKNOWN);
    m->jobs[t][error]++;
    m->replays += replayed;
}

void metrics_count_dead_letter(struct metrics *m, int reason)
{
    ASSERT(reason >= 0 && reason <= METRICS_DEAD_MAX_DELIVERIES);
    m->dead_letters[reason]++;
}

void metrics_observe_batch(struct metrics *m, uint64_t jobs)
{
    ASSERT(jobs > 0);
    for (int b = 0; b < METRICS_BATCH_BUCKETS; b++) {
        if (jobs <= (UINT64_C(1) << b)) {
            m->batch_jobs_buckets[b]++;
            break;
        }
    }
    m->batch_count++;
    m->batch_jobs_sum += jobs;
}

void metrics_observe_latency(struct metrics *m, double seconds)
{
    if (seconds < 0)
        seconds = 0; /* clocks of Redis and this host differ slightly */
    for (int b = 0; b < METRICS_LATENCY_BUCKETS; b++) {
        if (seconds <= latency_bounds_s[b]) {
            m->latency.buckets[b]++;
            break;
        }
    }
    m->latency.count++;
    m->latency.sum += seconds;
}

/* ---------------------------------------------------------------------------
 * The text
 * ------------------------------------------------------------------------- */

struct label {
    const char *name;
    const char *value;
};

void metrics_write_label_value(const char *value, FILE *out)
{
    ASSERT(value != NULL);
    ASSERT(out != NULL);
    for (const char *c = value; *c != '\0'; c++) {
        if (*c == '\\')
            fputs("\\\\", out);
        else if (*c == '"')
            fputs("\\\"", out);
        else if (*c == '\n')
            fputs("\\n", out);
        else
            fputc(*c, out);
    }
}

static void put_family(FILE *out, const char *name, const char *type, const char *help)
{
    ASSERT(out != NULL && name != NULL);
    ASSERT(type != NULL && help != NULL);
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* `name{a="x",b="y"} `: a sample's series; its value comes next. */
static void put_series(FILE *out, const char *name, const struct label *labels, size_t count)
{
    ASSERT(out != NULL && name != NULL);
    ASSERT(count <= LABELS_MAX && (labels != NULL || count == 0));
    fputs(name, out);
    for (size_t i = 0; i < count; i++) {
        fprintf(out, "%c%s=\"", i == 0 ? '{' : ',', labels[i].name);
        metrics_write_label_value(labels[i].value, out);
        fputc('"', out);
    }
    fputs(count > 0 ? "} " : " ", out);
}

static void put_u64(FILE *out, const char *name, const struct label *labels, size_t count,
                    uint64_t value)
{
    put_series(out, name, labels, count);
    fprintf(out, "%llu\n", (unsigned long long)value);
}

static void put_bool(FILE *out, const char *name, const struct label *labels, size_t count,
                     bool value)
{
    put_series(out, name, labels, count);
    fprintf(out, "%d\n", value);
}

static void render_jobs(const struct metrics *m, FILE *out)
{
    ASSERT(m != NULL && out != NULL);
    put_family(out, "credits_jobs_total", "counter",
               "Decisions published, by job type, status and error.");
    for (size_t t = 0; t <= METRICS_TYPE_UNKNOWN; t++) {
        const char *type = t == METRICS_TYPE_UNKNOWN ? "unknown" : job_type_name((enum job_type)t);
        /* Every series from the start, zeros included: a rate over a series
         * that appears with its first event would miss that event. */
        for (int e = 0; e < JOB_ERROR_COUNT; e++) {
            const struct label labels[] = {
                {"type", type},
                {"status", e == JOB_OK ? "applied" : "rejected"},
                {"error", e == JOB_OK ? "none" : job_error_name((enum job_error)e)},
            };
            put_u64(out, "credits_jobs_total", labels, 3, m->jobs[t][e]);
        }
    }
    put_family(out, "credits_replays_total", "counter",
               "Results published again for jobs decided earlier.");
    put_u64(out, "credits_replays_total", NULL, 0, m->replays);
    put_family(out, "credits_dead_letters_total", "counter",
               "Entries added to the dead-letter stream.");
    for (int e = 0; e <= METRICS_DEAD_MAX_DELIVERIES; e++) {
        if (e != JOB_OK && e != METRICS_DEAD_MAX_DELIVERIES &&
            job_error_is_stored((enum job_error)e))
            continue; /* a stored rejection is a result, never a dead letter */
        const struct label reason = {"reason", e == JOB_OK ? "database_error"
                                               : e == METRICS_DEAD_MAX_DELIVERIES
                                                   ? "max_deliveries"
                                                   : job_error_name((enum job_error)e)};
        put_u64(out, "credits_dead_letters_total", &reason, 1, m->dead_letters[e]);
    }
}

/* The buckets (cumulative, as the format wants), +Inf, _sum and _count of
 * a histogram whose bucket b holds the observations of bound b alone. */
static void put_buckets(FILE *out, const char *bucket_name, const uint64_t *buckets,
                        const char *const *bounds, size_t count, uint64_t total)
{
    ASSERT(out != NULL && bucket_name != NULL);
    ASSERT(buckets != NULL && bounds != NULL && count > 0);
    uint64_t cumulative = 0;
    for (size_t b = 0; b < count; b++) {
        cumulative += buckets[b];
        const struct label le = {"le", bounds[b]};
        put_u64(out, bucket_name, &le, 1, cumulative);
    }
    ASSERT(cumulative <= total); /* observations above the last bound are in +Inf only */
    const struct label inf = {"le", "+Inf"};
    put_u64(out, bucket_name, &inf, 1, total);
}

static void render_histograms(const struct metrics *m, FILE *out)
{
    ASSERT(m != NULL && out != NULL);
    char text[METRICS_LATENCY_BUCKETS][LABEL_NUMBER_BYTES];
    const char *bounds[METRICS_LATENCY_BUCKETS];
    _Static_assert(METRICS_BATCH_BUCKETS <= METRICS_LATENCY_BUCKETS, "room for either's bounds");
    for (int b = 0; b < METRICS_BATCH_BUCKETS; b++) {
        snprintf(text[b], sizeof text[b], "%llu", (unsigned long long)(UINT64_C(1) << b));
        bounds[b] = text[b];
    }
    put_family(out, "credits_batch_jobs", "histogram", "Jobs per database transaction.");
    put_buckets(out, "credits_batch_jobs_bucket", m->batch_jobs_buckets, bounds,
                METRICS_BATCH_BUCKETS, m->batch_count);
    put_u64(out, "credits_batch_jobs_sum", NULL, 0, m->batch_jobs_sum);
    put_u64(out, "credits_batch_jobs_count", NULL, 0, m->batch_count);

    for (int b = 0; b < METRICS_LATENCY_BUCKETS; b++) {
        snprintf(text[b], sizeof text[b], "%g", latency_bounds_s[b]);
        bounds[b] = text[b];
    }
    put_family(out, "credits_job_latency_seconds", "histogram",
               "From the entry's XADD to its result.");
    put_buckets(out, "credits_job_latency_seconds_bucket", m->latency.buckets, bounds,
                METRICS_LATENCY_BUCKETS, m->latency.count);
    put_series(out, "credits_job_latency_seconds_sum", NULL, 0);
    fprintf(out, "%.6f\n", m->latency.sum);
    put_u64(out, "credits_job_latency_seconds_count", NULL, 0, m->latency.count);
}

static void render_streams(const struct metrics *m, FILE *out)
{
    ASSERT(m != NULL && out != NULL);
    put_family(out, "credits_pending_entries", "gauge",
               "Entries delivered to the group, not acknowledged.");
    for (int s = 0; s < JOB_STREAM_COUNT; s++) {
        const struct label stream = {"stream", job_stream_name((enum job_stream)s)};
        put_series(out, "credits_pending_entries", &stream, 1);
        fprintf(out, "%lld\n", (long long)m->pending[s]);
    }
    put_family(out, "credits_oldest_pending_age_seconds", "gauge",
               "Age of the oldest pending entry.");
    for (int s = 0; s < JOB_STREAM_COUNT; s++) {
        const struct label stream = {"stream", job_stream_name((enum job_stream)s)};
        put_series(out, "credits_oldest_pending_age_seconds", &stream, 1);
        fprintf(out, "%.3f\n", m->oldest_pending_age_s[s]);
    }
}

static void render_connections(const struct metrics *m, FILE *out)
{
    ASSERT(m != NULL && out != NULL);
    put_family(out, "credits_reconnects_total", "counter",
               "Connections re-established after a loss.");
    for (size_t p = 0; p < PEER_COUNT; p++) {
        const struct label peer = {"peer", peer_names[p]};
        put_u64(out, "credits_reconnects_total", &peer, 1, m->reconnects[p]);
    }
    put_family(out, "credits_db_errors_total", "counter", "Failed batch transactions, by outcome.");
    for (size_t k = 0; k < DB_ERROR_COUNT; k++) {
        const struct label kind = {"kind", db_error_names[k]};
        put_u64(out, "credits_db_errors_total", &kind, 1, m->db_errors[k]);
    }
    put_family(out, "credits_inflight_jobs", "gauge", "Jobs read and not yet acknowledged.");
    put_series(out, "credits_inflight_jobs", NULL, 0);
    fprintf(out, "%lld\n", (long long)m->inflight_jobs);
    put_family(out, "credits_up", "gauge", "Whether the connection is ready.");
    for (size_t p = 0; p < PEER_COUNT; p++) {
        const struct label peer = {"peer", peer_names[p]};
        put_bool(out, "credits_up", &peer, 1, m->up[p]);
    }
    put_family(out, "credits_ready", "gauge", "Whether the worker is ready (/readyz).");
    put_bool(out, "credits_ready", NULL, 0, m->ready);
    put_family(out, "credits_database_durable", "gauge",
               "Whether PostgreSQL had fsync and full_page_writes on at the last connect.");
    put_bool(out, "credits_database_durable", NULL, 0, m->database_durable);
}

static const char *const sweep_outcome_names[METRICS_SWEEP_OUTCOMES] = {"done", "skipped",
                                                                        "failed"};
static const char *const sweep_row_names[METRICS_SWEEP_ROW_KINDS] = {
    "holds_released", "lots_expired", "lots_announced", "events_recovered", "events_pruned"};

static void render_sweep(const struct metrics *m, FILE *out)
{
    ASSERT(m != NULL && out != NULL);
    put_family(out, "credits_sweep_runs_total", "counter",
               "Sweep runs, by outcome (skipped: another worker held the lock).");
    for (size_t o = 0; o < METRICS_SWEEP_OUTCOMES; o++) {
        const struct label outcome = {"outcome", sweep_outcome_names[o]};
        put_u64(out, "credits_sweep_runs_total", &outcome, 1, m->sweep_runs[o]);
    }
    put_family(out, "credits_sweep_rows_total", "counter", "Rows the sweep touched, by kind.");
    for (size_t k = 0; k < METRICS_SWEEP_ROW_KINDS; k++) {
        const struct label kind = {"kind", sweep_row_names[k]};
        put_u64(out, "credits_sweep_rows_total", &kind, 1, m->sweep_rows[k]);
    }
    put_family(out, "credits_sweep_duration_seconds", "gauge",
               "Length of the last sweep run that held the lock.");
    put_series(out, "credits_sweep_duration_seconds", NULL, 0);
    fprintf(out, "%.6f\n", m->sweep_duration_s);
    put_family(out, "credits_sweep_lag_seconds", "gauge",
               "How long the oldest overdue hold or lot had been due when the sweep last looked.");
    put_series(out, "credits_sweep_lag_seconds", NULL, 0);
    fprintf(out, "%.3f\n", m->sweep_lag_s);
    put_family(out, "credits_events_published_total", "counter",
               "Events published to the events stream (at least once each).");
    put_u64(out, "credits_events_published_total", NULL, 0, m->events_published);
    put_family(out, "credits_events_publish_failures_total", "counter",
               "Publications of events Redis refused (the events are published later).");
    put_u64(out, "credits_events_publish_failures_total", NULL, 0, m->events_publish_failures);
    put_family(out, "credits_event_marks_pending", "gauge",
               "Events published and not yet marked published in the database.");
    put_series(out, "credits_event_marks_pending", NULL, 0);
    fprintf(out, "%lld\n", (long long)m->event_marks_pending);
}

void metrics_render(const struct metrics *m, FILE *out)
{
    ASSERT(m != NULL);
    ASSERT(out != NULL);
    render_jobs(m, out);
    render_histograms(m, out);
    render_streams(m, out);
    render_connections(m, out);
    render_sweep(m, out);
}
