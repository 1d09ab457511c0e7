/*
 * table.h -- aligned text tables for people, as creditsctl prints them:
 * a header row, columns padded to their widest cell (numbers to the right),
 * every cell made safe for a terminal and cut at TABLE_CELL_BYTES_MAX.
 *
 * Owns the layout only; the rows come from the caller through a callback
 * (a PGresult, an array of strings).
 */
#ifndef CREDITS_WORKER_CTL_TABLE_H
#define CREDITS_WORKER_CTL_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define TABLE_COLS_MAX 16
/* A cell holds at most this many bytes of its value, then "...". */
#define TABLE_CELL_BYTES_MAX 200
#define TABLE_CELL_BUF_BYTES (TABLE_CELL_BYTES_MAX + 8)

/* The text of a cell; row -1 is the header. NULL prints as "-". */
typedef const char *table_cell_fn(const void *ctx, int row, int col);

struct table {
    int rows;
    int cols; /* 1..TABLE_COLS_MAX */
    table_cell_fn *cell;
    const void *ctx;    /* passed to cell() */
    const bool *right;  /* per column: align right; NULL: all left */
    const char *indent; /* before each line; NULL: none */
};

/* Prints the header and the rows. */
void table_print(FILE *out, const struct table *t);

/* Column widths kept from one print to the next, for rows that come a few
 * at a time (`creditsctl events --follow`): each print widens them to fit
 * its cells, so a column never narrows. Zeroed: nothing printed yet. */
struct table_widths {
    size_t cols[TABLE_COLS_MAX];
};

/* Prints the rows of `t`, after its header when `header`, each column at
 * least widths->cols[c] wide, and widens `widths` to fit them (borrowed
 * until return). table_print() is this with zeroed widths and the header. */
void table_print_continued(FILE *out, const struct table *t, bool header,
                           struct table_widths *widths);

/*
 * Copies `in` into `out` fit for a terminal: control bytes (C0, DEL, and C1
 * written as UTF-8) become '?', and so does every non-ASCII byte when `in`
 * is not valid UTF-8; cut after TABLE_CELL_BYTES_MAX bytes with "...".
 * Returns the width in code points.
 */
size_t table_safe_cell(const char *in, char out[TABLE_CELL_BUF_BYTES]);

#endif
