/*
 * test_rows.c -- unit tests of worker/daemon/rows.c: the rows of a batch's
 * load read into the batch, and every bad row refused with a message that
 * names its table, row and column (never an assertion). The results are
 * built in memory with libpq's own PGresult constructors: no server.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "worker/daemon/rows.h"

#include "case_filter.h"

/* A text-format result of `cols` columns named `names`, rows of strings
 * (NULL: SQL NULL). */
static PGresult *result_of(int cols, const char *const *names, int rows, const char *const *cells)
{
    PGresult *r = PQmakeEmptyPGresult(NULL, PGRES_TUPLES_OK);
    assert_non_null(r);
    PGresAttDesc attrs[16];
    assert_true(cols <= 16);
    memset(attrs, 0, sizeof attrs);
    for (int c = 0; c < cols; c++) {
        attrs[c].name = (char *)names[c];
        attrs[c].typid = 25;
        attrs[c].typlen = -1;
        attrs[c].atttypmod = -1;
    }
    assert_int_equal(PQsetResultAttrs(r, cols, attrs), 1);
    for (int row = 0; row < rows; row++)
        for (int c = 0; c < cols; c++) {
            const char *cell = cells[row * cols + c];
            int len = cell ? (int)strlen(cell) : -1;
            assert_int_equal(PQsetvalue(r, row, c, (char *)cell, len), 1);
        }
    return r;
}

#define LOT_COLUMNS 10
static const char *const lot_names[LOT_COLUMNS] = {
    "user_id",    "lot_id",     "kind",   "granted", "remaining",
    "granted_at", "expires_at", "period", "revoked", "noticed"};

struct fx {
    struct batch_job jobs[1];
    struct batch batch;
    char errstr[300];
};

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    fx->jobs[0].job.type = JOB_CONSUME;
    strcpy(fx->jobs[0].job.id, "j1");
    strcpy(fx->jobs[0].job.user, "u1");
    fx->jobs[0].job.consume.amount = 1;
    batch_init(&fx->batch, fx->jobs, 1);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    batch_free(&fx->batch);
    free(fx);
    return 0;
}

static bool read_lots(struct fx *fx, const char *const *cells, int rows)
{
    PGresult *r = result_of(LOT_COLUMNS, lot_names, rows, cells);
    bool ok = rows_read(ROWS_LOTS, &fx->batch, r, fx->errstr, sizeof fx->errstr);
    PQclear(r);
    return ok;
}

static void test_lots_are_read_into_the_users_account(void **state)
{
    struct fx *fx = *state;
    /* clang-format off */
    const char *cells[] = {
        "u1", "7", "pack",    "500", "120", "1700000000000000", "1800000000000000", "",        "f", "t",
        "u1", "8", "monthly", "100", "0",   "1700000000000001", NULL,               "2026-11", "f", "f",
        "u1", "9", "pack",    "100", "0",   "1700000000000002", "1800000000000000", "",        "t", "f",
    };
    /* clang-format on */
    assert_true(read_lots(fx, cells, 3));
    const struct account *a = batch_account(&fx->batch, "u1");
    assert_int_equal(a->lot_count, 3);
    assert_int_equal(a->lots[0].lot_id, 7);
    assert_int_equal(a->lots[0].kind, LOT_PACK);
    assert_int_equal(a->lots[0].remaining, 120);
    assert_int_equal(a->lots[0].expires_at_us, INT64_C(1800000000000000));
    assert_int_equal(a->lots[1].kind, LOT_MONTHLY);
    assert_int_equal(a->lots[1].expires_at_us, LEDGER_NO_EXPIRY);
    assert_string_equal(a->lots[1].period, "2026-11");
    assert_false(a->lots[0].revoked);
    assert_true(a->lots[2].revoked);
    assert_true(a->lots[0].noticed);
    assert_false(a->lots[1].noticed);
}

static void test_bad_lot_rows_are_refused_with_the_column(void **state)
{
    struct fx *fx = *state;
    static const struct {
        const char *cells[LOT_COLUMNS];
        const char *why; /* in the message */
    } cases[] = {
        {{"u1", "7", "voucher", "5", "5", "1", NULL, "", "f", "f"},
         "column kind): lot kind 'voucher'"},
        {{"u1", "7", "pack", NULL, "5", "1", "2", "", "f", "f"}, "column granted): NULL"},
        {{"u1", "7", "pack", "5", "6", "1", "2", "", "f", "f"},
         "column remaining): 6 is outside 0..5"},
        {{"u1", "7", "pack", "5", "-1", "1", "2", "", "f", "f"},
         "column remaining): -1 is outside"},
        {{"u1", "x7", "pack", "5", "5", "1", "2", "", "f", "f"},
         "column lot_id): 'x7' is not a whole"},
        {{"u1", "0", "pack", "5", "5", "1", "2", "", "f", "f"}, "column lot_id): 0 is outside"},
        {{"u1", "7", "pack", "5", "5", "1", "2", "2026-111", "f", "f"}, "column period): 8 bytes"},
        {{"u1", "7", "pack", "5", "5", "99999999999999999999", "2", "", "f", "f"},
         "not a whole number"},
        {{NULL, "7", "pack", "5", "5", "1", "2", "", "f", "f"}, "column user_id): NULL"},
        {{"u1", "7", "pack", "5", "5", "1", "2", "", "yes", "f"},
         "column revoked): 'yes' is not a boolean"},
        {{"u1", "7", "pack", "5", "5", "1", "2", "", "t", "f"},
         "a revoked lot with 5 credits left"},
        {{"u1", "7", "pack", "5", "5", "1", "2", "", "f", NULL}, "column noticed): NULL"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fx->errstr[0] = '\0';
        if (read_lots(fx, cases[i].cells, 1))
            fail_msg("case %zu was read", i);
        if (strstr(fx->errstr, "credits.lots") == NULL || strstr(fx->errstr, cases[i].why) == NULL)
            fail_msg("case %zu: \"%s\" does not say \"%s\"", i, fx->errstr, cases[i].why);
    }
    assert_int_equal(batch_account(&fx->batch, "u1")->lot_count, 0);
}

static void test_a_result_of_another_shape_is_refused(void **state)
{
    struct fx *fx = *state;
    const char *const names[2] = {"user_id", "lot_id"};
    const char *cells[] = {"u1", "7"};
    PGresult *r = result_of(2, names, 1, cells);
    assert_false(rows_read(ROWS_LOTS, &fx->batch, r, fx->errstr, sizeof fx->errstr));
    assert_non_null(strstr(fx->errstr, "2 columns where 10 were expected"));
    assert_false(rows_read(ROWS_NOW, &fx->batch, r, fx->errstr, sizeof fx->errstr));
    PQclear(r);
}

static void test_now_is_one_positive_number(void **state)
{
    struct fx *fx = *state;
    const char *const names[1] = {"now"};
    const char *good[] = {"1795000000123456"};
    PGresult *r = result_of(1, names, 1, good);
    assert_true(rows_read(ROWS_NOW, &fx->batch, r, fx->errstr, sizeof fx->errstr));
    assert_int_equal(fx->batch.now_us, INT64_C(1795000000123456));
    PQclear(r);
    const char *two[] = {"1", "2"};
    r = result_of(1, names, 2, two);
    assert_false(rows_read(ROWS_NOW, &fx->batch, r, fx->errstr, sizeof fx->errstr));
    assert_non_null(strstr(fx->errstr, "2 rows where one was expected"));
    PQclear(r);
    const char *zero[] = {"0"};
    r = result_of(1, names, 1, zero);
    assert_false(rows_read(ROWS_NOW, &fx->batch, r, fx->errstr, sizeof fx->errstr));
    PQclear(r);
}

static void test_catalog_rows_are_bounded_like_the_schema(void **state)
{
    struct fx *fx = *state;
    const char *const names[3] = {"pack_id", "credits", "valid_days"};
    const char *good[] = {"starter", "500", "90"};
    PGresult *r = result_of(3, names, 1, good);
    assert_true(rows_read(ROWS_PACKS, &fx->batch, r, fx->errstr, sizeof fx->errstr));
    assert_int_equal(fx->batch.pack_count, 1);
    assert_int_equal(fx->batch.packs[0].info.valid_days, 90);
    PQclear(r);
    const char *bad_days[] = {"starter", "500", "0"};
    r = result_of(3, names, 1, bad_days);
    assert_false(rows_read(ROWS_PACKS, &fx->batch, r, fx->errstr, sizeof fx->errstr));
    assert_non_null(strstr(fx->errstr, "column valid_days"));
    PQclear(r);
    const char *const plan_names[4] = {"plan_id", "monthly_credits", "rollover_cap", "low_balance"};
    const char *bad_cap[] = {"pro", "100", "99", "0"}; /* below monthly */
    r = result_of(4, plan_names, 1, bad_cap);
    assert_false(rows_read(ROWS_PLANS, &fx->batch, r, fx->errstr, sizeof fx->errstr));
    assert_non_null(strstr(fx->errstr, "column rollover_cap): 99 is outside 100.."));
    PQclear(r);
    const char *threshold[] = {"pro", "100", "200", "25"};
    r = result_of(4, plan_names, 1, threshold);
    assert_true(rows_read(ROWS_PLANS, &fx->batch, r, fx->errstr, sizeof fx->errstr));
    assert_int_equal(fx->batch.plans[0].info.low_balance, 25);
    PQclear(r);
    const char *negative[] = {"pro", "100", "200", "-1"};
    r = result_of(4, plan_names, 1, negative);
    assert_false(rows_read(ROWS_PLANS, &fx->batch, r, fx->errstr, sizeof fx->errstr));
    assert_non_null(strstr(fx->errstr, "column low_balance"));
    PQclear(r);
}

static void test_a_stored_job_needs_its_request_and_result(void **state)
{
    struct fx *fx = *state;
    const char *const names[3] = {"job_id", "request", "result"};
    const char *cells[] = {"j1", "\x93", NULL};
    PGresult *r = result_of(3, names, 1, cells);
    assert_false(rows_read(ROWS_STORED, &fx->batch, r, fx->errstr, sizeof fx->errstr));
    assert_non_null(strstr(fx->errstr, "credits.jobs"));
    PQclear(r);
    const char *ok[] = {"j1", "\x93", "\x81"};
    r = result_of(3, names, 1, ok);
    assert_true(rows_read(ROWS_STORED, &fx->batch, r, fx->errstr, sizeof fx->errstr));
    assert_true(fx->jobs[0].stored_found);
    PQclear(r);
}

/* Reads a take result (hold takes or charges): id, amount, the lot. */
static bool read_takes(struct fx *fx, enum rows_kind kind, const char *const *cells, int rows)
{
    const char *names[2 + LOT_COLUMNS] = {"id", "amount"};
    for (int i = 0; i < LOT_COLUMNS; i++)
        names[2 + i] = lot_names[i];
    PGresult *r = result_of(2 + LOT_COLUMNS, names, rows, cells);
    bool ok = rows_read(kind, &fx->batch, r, fx->errstr, sizeof fx->errstr);
    PQclear(r);
    return ok;
}

static bool read_holds(struct fx *fx, const char *const *cells, int rows)
{
    const char *const names[6] = {"hold_id", "user_id",  "amount",
                                  "status",  "captured", "expires_at"};
    PGresult *r = result_of(6, names, rows, cells);
    bool ok = rows_read(ROWS_HOLDS, &fx->batch, r, fx->errstr, sizeof fx->errstr);
    PQclear(r);
    return ok;
}

static void test_holds_and_their_takes_are_read_with_their_lots(void **state)
{
    struct fx *fx = *state;
    /* clang-format off */
    const char *holds[] = {
        "h1", "u1", "30", "open",     "0",  "1800000000000000",
        "h2", "u1", "20", "captured", "15", "1800000000000000",
        "h3", "u9", "20", "open",     "0",  "1800000000000000", /* another user's */
    };
    /* clang-format on */
    assert_true(read_holds(fx, holds, 3));
    const struct account *a = batch_account(&fx->batch, "u1");
    assert_int_equal(a->hold_count, 2);
    assert_int_equal(a->holds[1]->status, HOLD_CAPTURED);
    assert_int_equal(a->holds[1]->captured, 15);
    /* The takes bring their lots, spent ones too, once each. */
    /* clang-format off */
    const char *takes[] = {
        "h1", "25", "u1", "7", "pack", "100", "0",  "1", "1800000000000000", "", "f", "f",
        "h1", "5",  "u1", "8", "pack", "100", "50", "1", "1800000000000001", "", "f", "f",
    };
    /* clang-format on */
    assert_true(read_takes(fx, ROWS_HOLD_TAKES, takes, 2));
    assert_int_equal(a->lot_count, 2);
    assert_int_equal(a->holds[0]->takes.count, 2);
    assert_int_equal(ledger_takes_total(&a->holds[0]->takes), 30);
    assert_int_equal(a->holds[0]->takes.items[0].lot_id, 7);
    const char *again[] = {"h1", "1", "u1", "7", "pack", "100", "0", "1", "1800000000000000",
                           "",   "f", "f"};
    assert_true(read_takes(fx, ROWS_HOLD_TAKES, again, 1));
    assert_int_equal(a->lot_count, 2);
    /* The takes of another user's open hold (a capture or release named it:
     * the store loads it of whichever user) are not this batch's: skipped,
     * so the job finds no hold (unknown_hold) and the batch goes on. */
    const char *theirs[] = {"h3", "20", "u9", "9", "pack", "100", "80", "1", "1800000000000000",
                            "",   "f",  "f"};
    assert_true(read_takes(fx, ROWS_HOLD_TAKES, theirs, 1));
    assert_null(batch_account(&fx->batch, "u9"));
    assert_int_equal(a->lot_count, 2);
    assert_null(ledger_account_hold(batch_account(&fx->batch, "u1"), "h3"));
    /* A take of a hold that is not open is a row this worker cannot explain. */
    const char *closed[] = {"h2", "5", "u1", "7", "pack", "100", "0", "1", "1800000000000000",
                            "",   "f", "f"};
    assert_false(read_takes(fx, ROWS_HOLD_TAKES, closed, 1));
    assert_non_null(strstr(fx->errstr, "not an open hold's"));
    const char *bad_status[] = {"h4", "u1", "20", "pending", "0", "1800000000000000"};
    assert_false(read_holds(fx, bad_status, 1));
    assert_non_null(strstr(fx->errstr, "hold status 'pending'"));
}

static void test_charges_keep_a_known_charge_with_nothing_left(void **state)
{
    struct fx *fx = *state;
    /* clang-format off */
    const char *cells[] = {
        "c1", "4", "u1", "7", "pack", "100", "0", "1", "1800000000000000", "", "f", "f",
        "c2", "0", "u1", "8", "pack", "100", "0", "1", "1800000000000000", "", "f", "f",
        "c3", "9", "u9", "9", "pack", "100", "0", "1", "1800000000000000", "", "f", "f",
    };
    /* clang-format on */
    assert_true(read_takes(fx, ROWS_CHARGES, cells, 3));
    struct account *a = batch_account(&fx->batch, "u1");
    assert_int_equal(a->charge_count, 2);
    assert_int_equal(ledger_takes_total(&ledger_account_charge(a, "c1")->takes), 4);
    assert_non_null(ledger_account_charge(a, "c2"));
    assert_int_equal(ledger_account_charge(a, "c2")->takes.count, 0);
}

static void test_payment_lots_are_used_by_anyone_and_loaded_for_their_user(void **state)
{
    struct fx *fx = *state;
    const char *names[1 + LOT_COLUMNS] = {"payment_ref"};
    for (int i = 0; i < LOT_COLUMNS; i++)
        names[1 + i] = lot_names[i];
    /* clang-format off */
    const char *cells[] = {
        "pay-1", "u1", "7", "pack", "100", "0", "1", "1800000000000000", "", "t", "f",
        "pay-2", "u9", "8", "pack", "100", "5", "1", "1800000000000000", "", "f", "f",
    };
    /* clang-format on */
    PGresult *r = result_of(1 + LOT_COLUMNS, names, 2, cells);
    assert_true(rows_read(ROWS_PAYMENT_LOTS, &fx->batch, r, fx->errstr, sizeof fx->errstr));
    PQclear(r);
    assert_int_equal(fx->batch.payment_count, 2);
    assert_string_equal(fx->batch.payments[1].user, "u9");
    const struct account *a = batch_account(&fx->batch, "u1");
    assert_int_equal(a->lot_count, 1);
    assert_true(a->lots[0].revoked);
    const char *monthly[] = {"pay-3", "u1", "9",       "monthly", "100", "5",
                             "1",     NULL, "2026-11", "f",       "f"};
    r = result_of(1 + LOT_COLUMNS, names, 1, monthly);
    assert_false(rows_read(ROWS_PAYMENT_LOTS, &fx->batch, r, fx->errstr, sizeof fx->errstr));
    assert_non_null(strstr(fx->errstr, "not a pack"));
    PQclear(r);
}

/* The insert's IDs go to the staged copies, in order; a count that is not
 * the staged events' is refused. */
static void test_event_ids_fill_the_staged_events_in_order(void **state)
{
    struct fx *fx = *state;
    struct balance balance = {.total = 5};
    event_list_add(&fx->batch.stored_events, EVENT_BALANCE_LOW, "u1", "j1", 1, &balance);
    event_list_add(&fx->batch.stored_events, EVENT_BALANCE_DEPLETED, "u1", "j1", 1, &balance);
    const char *names[] = {"event_id"};
    const char *two[] = {"41", "42"};
    PGresult *r = result_of(1, names, 2, two);
    assert_true(rows_read(ROWS_EVENT_IDS, &fx->batch, r, fx->errstr, sizeof fx->errstr));
    PQclear(r);
    assert_int_equal(fx->batch.stored_events.items[0].event_id, 41);
    assert_int_equal(fx->batch.stored_events.items[1].event_id, 42);
    assert_int_equal(fx->batch.stored_events.items[1].type, EVENT_BALANCE_DEPLETED);
    const char *one[] = {"43"};
    r = result_of(1, names, 1, one);
    assert_false(rows_read(ROWS_EVENT_IDS, &fx->batch, r, fx->errstr, sizeof fx->errstr));
    assert_non_null(strstr(fx->errstr, "1 rows for the 2 events"));
    PQclear(r);
    const char *zero[] = {"0", "44"};
    r = result_of(1, names, 2, zero);
    assert_false(rows_read(ROWS_EVENT_IDS, &fx->batch, r, fx->errstr, sizeof fx->errstr));
    assert_non_null(strstr(fx->errstr, "credits.events"));
    PQclear(r);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lots_are_read_into_the_users_account, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_lot_rows_are_refused_with_the_column, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_result_of_another_shape_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_now_is_one_positive_number, setup, teardown),
        cmocka_unit_test_setup_teardown(test_catalog_rows_are_bounded_like_the_schema, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_a_stored_job_needs_its_request_and_result, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_holds_and_their_takes_are_read_with_their_lots, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_charges_keep_a_known_charge_with_nothing_left, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_payment_lots_are_used_by_anyone_and_loaded_for_their_user, setup, teardown),
        cmocka_unit_test_setup_teardown(test_event_ids_fill_the_staged_events_in_order, setup,
                                        teardown),
    };
    return case_filter_run("rows", tests, sizeof tests / sizeof tests[0], NULL, NULL, argc, argv);
}
