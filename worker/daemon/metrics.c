/*
 * metrics.c -- updating and rendering the worker's metrics (metrics.h).
 */
#include "worker/daemon/metrics.h"

#include "core/assert.h"

static const double latency_bounds_s[METRICS_LATENCY_BUCKETS] = {
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 60};

static const char *const peer_names[2] = {"redis", "postgres"};
static const char *const db_error_names[METRICS_DB_ERROR_KINDS] = {"retry", "failed", "lost",
                                                                   "unavailable"};

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

static void render_jobs(const struct metrics *m, FILE *out)
{
    fprintf(out, "# HELP credits_jobs_total Decisions published, by job type, status and error.\n"
                 "# TYPE credits_jobs_total counter\n");
    for (size_t t = 0; t <= METRICS_TYPE_UNKNOWN; t++) {
        const char *type = t == METRICS_TYPE_UNKNOWN ? "unknown" : job_type_name((enum job_type)t);
        /* Every series from the start, zeros included: a rate over a series
         * that appears with its first event would miss that event. */
        for (int e = 0; e < JOB_ERROR_COUNT; e++) {
            fprintf(out, "credits_jobs_total{type=\"%s\",status=\"%s\",error=\"%s\"} %llu\n", type,
                    e == JOB_OK ? "applied" : "rejected",
                    e == JOB_OK ? "none" : job_error_name((enum job_error)e),
                    (unsigned long long)m->jobs[t][e]);
        }
    }
    fprintf(out,
            "# HELP credits_replays_total Results published again for jobs decided earlier.\n"
            "# TYPE credits_replays_total counter\ncredits_replays_total %llu\n",
            (unsigned long long)m->replays);
    fprintf(out, "# HELP credits_dead_letters_total Entries added to the dead-letter stream.\n"
                 "# TYPE credits_dead_letters_total counter\n");
    for (int e = 0; e <= METRICS_DEAD_MAX_DELIVERIES; e++)
        if (e == JOB_OK || e == METRICS_DEAD_MAX_DELIVERIES ||
            !job_error_is_stored((enum job_error)e))
            fprintf(out, "credits_dead_letters_total{reason=\"%s\"} %llu\n",
                    e == JOB_OK                        ? "database_error"
                    : e == METRICS_DEAD_MAX_DELIVERIES ? "max_deliveries"
                                                       : job_error_name((enum job_error)e),
                    (unsigned long long)m->dead_letters[e]);
}

static void render_histograms(const struct metrics *m, FILE *out)
{
    fprintf(out, "# HELP credits_batch_jobs Jobs per database transaction.\n"
                 "# TYPE credits_batch_jobs histogram\n");
    uint64_t cumulative = 0;
    for (int b = 0; b < METRICS_BATCH_BUCKETS; b++) {
        cumulative += m->batch_jobs_buckets[b];
        fprintf(out, "credits_batch_jobs_bucket{le=\"%llu\"} %llu\n",
                (unsigned long long)(UINT64_C(1) << b), (unsigned long long)cumulative);
    }
    fprintf(out,
            "credits_batch_jobs_bucket{le=\"+Inf\"} %llu\ncredits_batch_jobs_sum %llu\n"
            "credits_batch_jobs_count %llu\n",
            (unsigned long long)m->batch_count, (unsigned long long)m->batch_jobs_sum,
            (unsigned long long)m->batch_count);

    fprintf(out, "# HELP credits_job_latency_seconds From the entry's XADD to its result.\n"
                 "# TYPE credits_job_latency_seconds histogram\n");
    cumulative = 0;
    for (int b = 0; b < METRICS_LATENCY_BUCKETS; b++) {
        cumulative += m->latency.buckets[b];
        fprintf(out, "credits_job_latency_seconds_bucket{le=\"%g\"} %llu\n", latency_bounds_s[b],
                (unsigned long long)cumulative);
    }
    fprintf(out,
            "credits_job_latency_seconds_bucket{le=\"+Inf\"} %llu\n"
            "credits_job_latency_seconds_sum %.6f\ncredits_job_latency_seconds_count %llu\n",
            (unsigned long long)m->latency.count, m->latency.sum,
            (unsigned long long)m->latency.count);
}

static void render_gauges(const struct metrics *m, FILE *out)
{
    fprintf(out,
            "# HELP credits_pending_entries Entries delivered to the group, not acknowledged.\n"
            "# TYPE credits_pending_entries gauge\n");
    for (int s = 0; s < JOB_STREAM_COUNT; s++)
        fprintf(out, "credits_pending_entries{stream=\"%s\"} %lld\n",
                job_stream_name((enum job_stream)s), (long long)m->pending[s]);
    fprintf(out, "# HELP credits_oldest_pending_age_seconds Age of the oldest pending entry.\n"
                 "# TYPE credits_oldest_pending_age_seconds gauge\n");
    for (int s = 0; s < JOB_STREAM_COUNT; s++)
        fprintf(out, "credits_oldest_pending_age_seconds{stream=\"%s\"} %.3f\n",
                job_stream_name((enum job_stream)s), m->oldest_pending_age_s[s]);
    fprintf(out, "# HELP credits_reconnects_total Connections re-established after a loss.\n"
                 "# TYPE credits_reconnects_total counter\n");
    for (int p = 0; p < 2; p++)
        fprintf(out, "credits_reconnects_total{peer=\"%s\"} %llu\n", peer_names[p],
                (unsigned long long)m->reconnects[p]);
    fprintf(out, "# HELP credits_db_errors_total Failed batch transactions, by outcome.\n"
                 "# TYPE credits_db_errors_total counter\n");
    for (int k = 0; k < METRICS_DB_ERROR_KINDS; k++)
        fprintf(out, "credits_db_errors_total{kind=\"%s\"} %llu\n", db_error_names[k],
                (unsigned long long)m->db_errors[k]);
    fprintf(out,
            "# HELP credits_inflight_jobs Jobs read and not yet acknowledged.\n"
            "# TYPE credits_inflight_jobs gauge\ncredits_inflight_jobs %lld\n",
            (long long)m->inflight_jobs);
    fprintf(out, "# HELP credits_up Whether the connection is ready.\n# TYPE credits_up gauge\n");
    for (int p = 0; p < 2; p++)
        fprintf(out, "credits_up{peer=\"%s\"} %d\n", peer_names[p], m->up[p]);
    fprintf(out,
            "# HELP credits_ready Whether the worker is ready (/readyz).\n"
            "# TYPE credits_ready gauge\ncredits_ready %d\n",
            m->ready);
}

void metrics_render(const struct metrics *m, FILE *out)
{
    ASSERT(m && out);
    render_jobs(m, out);
    render_histograms(m, out);
    render_gauges(m, out);
}
