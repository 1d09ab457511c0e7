/*
 * metrics.h -- the worker's counters, gauges and histograms, and their
 * Prometheus text rendering. The names and labels are documented in
 * deploy/METRICS.md; this file is the one place that produces them.
 *
 * Owns the numbers and their text: the worker updates them, the HTTP
 * endpoint serves what metrics_render() writes. Does no I/O of its own (the
 * caller's FILE *, an open_memstream() one, say) and serves nothing.
 */
#ifndef CREDITS_WORKER_DAEMON_METRICS_H
#define CREDITS_WORKER_DAEMON_METRICS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "core/job.h"

#define METRICS_BATCH_BUCKETS 13            /* 1, 2, 4, ... 4096 */
#define METRICS_LATENCY_BUCKETS 14          /* 1 ms ... 60 s */
#define METRICS_TYPE_UNKNOWN JOB_TYPE_COUNT /* a message with no readable type */
#define METRICS_DEAD_MAX_DELIVERIES JOB_ERROR_COUNT

enum metrics_peer {
    METRICS_REDIS = 0,
    METRICS_POSTGRES = 1,
};

enum metrics_db_error {
    METRICS_DB_RETRY = 0,
    METRICS_DB_FAILED = 1,
    METRICS_DB_LOST = 2,
    METRICS_DB_UNAVAILABLE = 3,
};
#define METRICS_DB_ERROR_KINDS 4

/* How a sweep run ended. */
enum metrics_sweep_outcome {
    METRICS_SWEEP_DONE = 0,    /* held the lock and finished */
    METRICS_SWEEP_SKIPPED = 1, /* another worker held the lock */
    METRICS_SWEEP_FAILED = 2,  /* a statement failed or the connection went */
};
#define METRICS_SWEEP_OUTCOMES 3

/* What a sweep touched. */
enum metrics_sweep_rows {
    METRICS_SWEEP_HOLDS_RELEASED = 0,
    METRICS_SWEEP_LOTS_EXPIRED = 1,
    METRICS_SWEEP_LOTS_ANNOUNCED = 2,
    METRICS_SWEEP_EVENTS_RECOVERED = 3,
    METRICS_SWEEP_EVENTS_PRUNED = 4,
};
#define METRICS_SWEEP_ROW_KINDS 5

struct metrics_histogram {
    uint64_t buckets[METRICS_LATENCY_BUCKETS]; /* cumulative on rendering only */
    uint64_t count;
    double sum;
};

struct metrics {
    /* [type or unknown][error]: error JOB_OK means applied. */
    uint64_t jobs[JOB_TYPE_COUNT + 1][JOB_ERROR_COUNT];
    uint64_t replays;
    /* By error code; [JOB_OK]: a database error; [METRICS_DEAD_MAX_DELIVERIES]:
     * delivered too many times without a decision. */
    uint64_t dead_letters[JOB_ERROR_COUNT + 1];
    uint64_t batch_jobs_buckets[METRICS_BATCH_BUCKETS];
    uint64_t batch_count;
    uint64_t batch_jobs_sum;
    struct metrics_histogram latency;
    int64_t pending[JOB_STREAM_COUNT];
    double oldest_pending_age_s[JOB_STREAM_COUNT];
    uint64_t reconnects[2];
    uint64_t db_errors[METRICS_DB_ERROR_KINDS];
    int64_t inflight_jobs;
    bool up[2];
    bool ready;
    bool database_durable; /* fsync and full_page_writes on, at the last connect */
    /* The sweep and the events (contract 9.7, 9.8). */
    uint64_t sweep_runs[METRICS_SWEEP_OUTCOMES];
    uint64_t sweep_rows[METRICS_SWEEP_ROW_KINDS];
    double sweep_duration_s; /* of the last run that held the lock */
    double sweep_lag_s;      /* how long the oldest due row had been due, at the last look */
    uint64_t events_published;
    uint64_t events_publish_failures;
    int64_t event_marks_pending;
};

void metrics_count_job(struct metrics *m, bool has_type, enum job_type type, enum job_error error,
                       bool replayed);
/* reason: an error code, JOB_OK for a database error, or
 * METRICS_DEAD_MAX_DELIVERIES. */
void metrics_count_dead_letter(struct metrics *m, int reason);
void metrics_observe_batch(struct metrics *m, uint64_t jobs);
void metrics_observe_latency(struct metrics *m, double seconds);

/* Writes the Prometheus text exposition (format 0.0.4) to `out`: every
 * series from the start, zeros included. Borrows both until return. */
void metrics_render(const struct metrics *m, FILE *out);

/* Writes `value` as the inside of a quoted label value: backslash, double
 * quote and line feed escaped as the exposition format wants. */
void metrics_write_label_value(const char *value, FILE *out);

#endif
