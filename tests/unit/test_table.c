/*
 * test_table.c -- creditsctl's text tables (worker/ctl/table.c) into
 * memory: columns padded to the widest cell, numbers to the right, no
 * trailing blanks, width counted in code points; rows printed a few at a
 * time keep and widen the columns' widths; every byte 0x00-0xFF made
 * safe for a terminal; cells cut at TABLE_CELL_BYTES_MAX.
 */
#include "case_filter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker/ctl/table.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define ROWS_MAX 4
#define COLS_MAX 3

/* A table of strings: row 0 is the header. */
struct grid {
    int rows; /* below the header */
    int cols;
    const char *cells[ROWS_MAX + 1][COLS_MAX];
};

static const char *grid_cell(const void *ctx, int row, int col)
{
    const struct grid *g = ctx;
    assert_true(row >= -1 && row < g->rows);
    assert_true(col >= 0 && col < g->cols);
    return g->cells[row + 1][col];
}

/* The printed table; the caller frees it. */
static char *print_grid(const struct grid *g, const bool *right, const char *indent)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    const struct table t = {g->rows, g->cols, grid_cell, g, right, indent};
    table_print(out, &t);
    assert_int_equal(fclose(out), 0);
    return text;
}

/* ---------------------------------------------------------------------------
 * Layout
 * ------------------------------------------------------------------------- */

static void test_columns_are_padded_numbers_right_last_unpadded(void **state)
{
    (void)state;
    const struct grid g = {
        2, 3, {{"NAME", "CREDITS", "NOTE"}, {"alice", "5", "x"}, {"bob", "12345", "longer note"}}};
    const bool right[] = {false, true, false};
    char *text = print_grid(&g, right, NULL);
    assert_string_equal(text, "NAME   CREDITS  NOTE\n"
                              "alice        5  x\n"
                              "bob      12345  longer note\n");
    free(text);
}

static void test_without_alignments_every_column_is_left(void **state)
{
    (void)state;
    const struct grid g = {1, 2, {{"A", "B"}, {"1", "22"}}};
    char *text = print_grid(&g, NULL, NULL);
    assert_string_equal(text, "A  B\n1  22\n");
    free(text);
}

static void test_indent_starts_every_line(void **state)
{
    (void)state;
    const struct grid g = {1, 2, {{"K", "V"}, {"key", "v"}}};
    char *text = print_grid(&g, NULL, "    ");
    assert_string_equal(text, "    K    V\n    key  v\n");
    free(text);
}

static void test_no_rows_prints_the_header(void **state)
{
    (void)state;
    const struct grid g = {0, 2, {{"ENTRY", "REASON"}}};
    char *text = print_grid(&g, NULL, NULL);
    assert_string_equal(text, "ENTRY  REASON\n");
    free(text);
}

static void test_null_cell_prints_a_dash(void **state)
{
    (void)state;
    const struct grid g = {1, 2, {{"A", "B"}, {NULL, NULL}}};
    char *text = print_grid(&g, NULL, NULL);
    assert_string_equal(text, "A  B\n-  -\n");
    free(text);
}

static void test_width_counts_code_points_not_bytes(void **state)
{
    (void)state;
    const struct grid g = {2, 2, {{"USER", "N"}, {"\xc3\xa9t\xc3\xa9", "1"}, {"ab", "2"}}};
    char *text = print_grid(&g, NULL, NULL);
    assert_string_equal(text, "USER  N\n\xc3\xa9t\xc3\xa9   1\nab    2\n");
    free(text);
}

static void test_unsafe_cells_are_padded_as_printed(void **state)
{
    (void)state;
    const struct grid g = {1, 2, {{"A", "B"}, {"\x1b[2J\x1b[H", "x"}}};
    char *text = print_grid(&g, NULL, NULL);
    assert_string_equal(text, "A        B\n?[2J?[H  x\n");
    free(text);
}

/* Prints `g` continued from `widths` (table_print_continued()) into a
 * string; the caller frees it. */
static char *print_continued(const struct grid *g, const bool *right, bool header,
                             struct table_widths *widths)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    const struct table t = {g->rows, g->cols, grid_cell, g, right, NULL};
    table_print_continued(out, &t, header, widths);
    assert_int_equal(fclose(out), 0);
    return text;
}

static void test_continued_rows_keep_the_widths_of_the_first_print(void **state)
{
    (void)state;
    struct table_widths widths;
    memset(&widths, 0, sizeof widths);
    const bool right[] = {true, false, false};
    const struct grid first = {1, 3, {{"ID", "TYPE", "USER"}, {"1", "balance_low", "alice"}}};
    char *text = print_continued(&first, right, true, &widths);
    assert_string_equal(text, "ID  TYPE         USER\n"
                              " 1  balance_low  alice\n");
    free(text);
    assert_int_equal(widths.cols[0], 2);
    assert_int_equal(widths.cols[1], 11);
    assert_int_equal(widths.cols[2], 5);
    /* Narrower rows later: padded as the first print, no header. */
    const struct grid later = {1, 3, {{"ID", "TYPE", "USER"}, {"2", "x", "bo"}}};
    text = print_continued(&later, right, false, &widths);
    assert_string_equal(text, " 2  x            bo\n");
    free(text);
}

static void test_a_wider_continued_cell_widens_its_column_for_good(void **state)
{
    (void)state;
    struct table_widths widths;
    memset(&widths, 0, sizeof widths);
    const struct grid first = {1, 2, {{"ID", "TYPE"}, {"1", "a"}}};
    free(print_continued(&first, NULL, true, &widths));
    const struct grid wide = {1, 2, {{"ID", "TYPE"}, {"12345", "b"}}};
    char *text = print_continued(&wide, NULL, false, &widths);
    assert_string_equal(text, "12345  b\n");
    free(text);
    assert_int_equal(widths.cols[0], 5);
    const struct grid narrow = {1, 2, {{"ID", "TYPE"}, {"7", "c"}}};
    text = print_continued(&narrow, NULL, false, &widths);
    assert_string_equal(text, "7      c\n");
    free(text);
}

static void test_continued_without_header_leaves_the_header_out_of_the_widths(void **state)
{
    (void)state;
    struct table_widths widths;
    memset(&widths, 0, sizeof widths);
    const struct grid g = {1, 2, {{"A_LONG_HEADER", "B"}, {"x", "y"}}};
    char *text = print_continued(&g, NULL, false, &widths);
    assert_string_equal(text, "x  y\n");
    free(text);
    assert_int_equal(widths.cols[0], 1);
    /* With no rows and no header, nothing at all. */
    const struct grid empty = {0, 2, {{"A", "B"}}};
    text = print_continued(&empty, NULL, false, &widths);
    assert_string_equal(text, "");
    free(text);
}

/* ---------------------------------------------------------------------------
 * Safe cells
 * ------------------------------------------------------------------------- */

static void test_every_byte_alone_is_kept_or_made_a_question_mark(void **state)
{
    (void)state;
    for (unsigned b = 1; b <= 0xFF; b++) {
        char in[2] = {(char)b, '\0'}, out[TABLE_CELL_BUF_BYTES];
        /* Printable ASCII stays; control bytes, DEL, and any byte of 0x80
         * and above (alone never valid UTF-8) become '?'. */
        bool printable = b >= 0x20 && b < 0x7F;
        assert_int_equal(table_safe_cell(in, out), 1);
        if (printable)
            assert_string_equal(out, in);
        else
            assert_string_equal(out, "?");
    }
    char out[TABLE_CELL_BUF_BYTES];
    assert_int_equal(table_safe_cell("", out), 0);
    assert_string_equal(out, "");
}

struct cell_case {
    const char *name;
    const char *in;
    const char *out;
    size_t width;
};

static const struct cell_case cell_cases[] = {
    {"cell_plain", "alice", "alice", 5},
    {"cell_terminal_escape", "a\x1b[31mred", "a?[31mred", 9},
    {"cell_line_feed_and_carriage_return", "a\r\nb", "a??b", 4},
    {"cell_tab", "a\tb", "a?b", 3},
    {"cell_delete", "a\x7f", "a?", 2},
    {"cell_valid_utf8_is_kept", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
     "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 8},
    {"cell_c1_control_is_one_question_mark", "a\xc2\x9b!", "a?!", 3},
    {"cell_c1_range_ends", "\xc2\x80\xc2\x9f", "??", 2},
    {"cell_no_break_space_after_the_c1_range_is_kept", "a\xc2\xa0!", "a\xc2\xa0!", 3},
    {"cell_invalid_utf8_every_high_byte", "\xff\xfe", "??", 2},
    {"cell_invalid_utf8_replaces_valid_sequences_too", "\xc3\xa9-\xff", "?\?-?", 4},
    {"cell_truncated_sequence", "ab\xe2\x82", "ab??", 4},
    {"cell_overlong", "\xc0\xaf", "??", 2},
};

static void run_cell_case(void **state)
{
    const struct cell_case *c = *state;
    char out[TABLE_CELL_BUF_BYTES];
    assert_int_equal(table_safe_cell(c->in, out), c->width);
    assert_string_equal(out, c->out);
}

/* `count` copies of `c`, then `tail`. */
static void repeat(char *buf, size_t size, char c, size_t count, const char *tail)
{
    assert_true(count + strlen(tail) < size);
    memset(buf, c, count);
    strcpy(buf + count, tail);
}

static void test_cells_are_cut_after_the_byte_limit(void **state)
{
    (void)state;
    char in[512], want[512], out[TABLE_CELL_BUF_BYTES];
    repeat(in, sizeof in, 'a', TABLE_CELL_BYTES_MAX, "");
    assert_int_equal(table_safe_cell(in, out), TABLE_CELL_BYTES_MAX);
    assert_string_equal(out, in); /* at the limit: whole */
    repeat(in, sizeof in, 'a', TABLE_CELL_BYTES_MAX + 1, "");
    repeat(want, sizeof want, 'a', TABLE_CELL_BYTES_MAX, "...");
    assert_int_equal(table_safe_cell(in, out), TABLE_CELL_BYTES_MAX + 3);
    assert_string_equal(out, want);
    repeat(in, sizeof in, 'a', 300, "");
    assert_int_equal(table_safe_cell(in, out), TABLE_CELL_BYTES_MAX + 3);
    assert_string_equal(out, want);
    /* A sequence that starts before the limit is kept whole. */
    repeat(in, sizeof in, 'a', TABLE_CELL_BYTES_MAX - 1, "\xf0\x9f\x98\x80z");
    repeat(want, sizeof want, 'a', TABLE_CELL_BYTES_MAX - 1, "\xf0\x9f\x98\x80...");
    assert_int_equal(table_safe_cell(in, out), TABLE_CELL_BYTES_MAX + 3);
    assert_string_equal(out, want);
    /* Replaced bytes count against the limit like any other. */
    repeat(in, sizeof in, '\n', TABLE_CELL_BYTES_MAX + 5, "");
    repeat(want, sizeof want, '?', TABLE_CELL_BYTES_MAX, "...");
    assert_int_equal(table_safe_cell(in, out), TABLE_CELL_BYTES_MAX + 3);
    assert_string_equal(out, want);
}

static void test_a_cut_cell_sets_its_column_width(void **state)
{
    (void)state;
    char long_cell[300], want[600];
    repeat(long_cell, sizeof long_cell, 'x', 250, "");
    const struct grid g = {1, 2, {{"A", "B"}, {long_cell, "1"}}};
    char *text = print_grid(&g, NULL, NULL);
    int n = snprintf(want, sizeof want, "A%*s  B\n%.*s...  1\n", TABLE_CELL_BYTES_MAX + 2, "",
                     TABLE_CELL_BYTES_MAX, long_cell);
    assert_true(n > 0 && (size_t)n < sizeof want);
    assert_string_equal(text, want);
    free(text);
}

int main(int argc, char **argv)
{
    static const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_columns_are_padded_numbers_right_last_unpadded),
        cmocka_unit_test(test_without_alignments_every_column_is_left),
        cmocka_unit_test(test_indent_starts_every_line),
        cmocka_unit_test(test_no_rows_prints_the_header),
        cmocka_unit_test(test_null_cell_prints_a_dash),
        cmocka_unit_test(test_width_counts_code_points_not_bytes),
        cmocka_unit_test(test_unsafe_cells_are_padded_as_printed),
        cmocka_unit_test(test_continued_rows_keep_the_widths_of_the_first_print),
        cmocka_unit_test(test_a_wider_continued_cell_widens_its_column_for_good),
        cmocka_unit_test(test_continued_without_header_leaves_the_header_out_of_the_widths),
        cmocka_unit_test(test_every_byte_alone_is_kept_or_made_a_question_mark),
        cmocka_unit_test(test_cells_are_cut_after_the_byte_limit),
        cmocka_unit_test(test_a_cut_cell_sets_its_column_width),
    };
    struct CMUnitTest tests[ARRAY_LEN(fixed) + ARRAY_LEN(cell_cases)];
    size_t n = 0;
    for (size_t i = 0; i < ARRAY_LEN(fixed); i++)
        tests[n++] = fixed[i];
    for (size_t i = 0; i < ARRAY_LEN(cell_cases); i++)
        tests[n++] = (struct CMUnitTest){cell_cases[i].name, run_cell_case, NULL, NULL,
                                         (void *)&cell_cases[i]};
    return case_filter_run("table", tests, n, NULL, NULL, argc, argv);
}
