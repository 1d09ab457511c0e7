/*
 * table.c -- creditsctl's aligned text tables, cells made safe for a
 * terminal.
 *
 * Owns the layout and the safe text of a cell. Does not own the rows (the
 * caller's callback) or the FILE * it writes to.
 */
#include "worker/ctl/table.h"

#include <string.h>

#include "core/assert.h"
#include "core/job.h"

size_t table_safe_cell(const char *in, char out[TABLE_CELL_BUF_BYTES])
{
    bool utf8 = job_text_is_valid(in, strlen(in));
    size_t n = 0;
    size_t width = 0;
    for (size_t i = 0; in[i] != '\0'; i++) {
        unsigned char c = (unsigned char)in[i];
        bool continuation = (c & 0xC0) == 0x80;
        if (!continuation && n >= TABLE_CELL_BYTES_MAX) {
            memcpy(out + n, "...", 3);
            n += 3;
            width += 3;
            break;
        }
        unsigned char next = (unsigned char)in[i + 1];
        bool c1 = utf8 && c == 0xC2 && next >= 0x80 && next <= 0x9F;
        if (c < 0x20 || c == 0x7F || (!utf8 && c >= 0x80) || c1) {
            out[n++] = '?';
            width++;
            i += c1 ? 1 : 0;
            continue;
        }
        out[n++] = (char)c;
        width += continuation ? 0 : 1;
    }
    ASSERT(n < TABLE_CELL_BUF_BYTES);
    out[n] = '\0';
    return width;
}

static const char *cell_text(const struct table *t, int row, int col)
{
    const char *text = t->cell(t->ctx, row, col);
    return text ? text : "-";
}

static void print_cell(FILE *out, const char *text, size_t width, size_t column_width, bool right,
                       bool last)
{
    size_t pad = column_width - width;
    if (right)
        fprintf(out, "%*s", (int)pad, "");
    fputs(text, out);
    if (!right && !last)
        fprintf(out, "%*s", (int)pad, "");
    if (!last)
        fputs("  ", out);
}

void table_print_continued(FILE *out, const struct table *t, bool header,
                           struct table_widths *widths)
{
    ASSERT(out && t && t->cell && widths);
    ASSERT(t->cols > 0 && t->cols <= TABLE_COLS_MAX && t->rows >= 0);
    int first = header ? -1 : 0;
    char cell[TABLE_CELL_BUF_BYTES];
    for (int c = 0; c < t->cols; c++) {
        for (int r = first; r < t->rows; r++) {
            size_t w = table_safe_cell(cell_text(t, r, c), cell);
            widths->cols[c] = w > widths->cols[c] ? w : widths->cols[c];
        }
    }
    for (int r = first; r < t->rows; r++) {
        fputs(t->indent ? t->indent : "", out);
        for (int c = 0; c < t->cols; c++) {
            size_t w = table_safe_cell(cell_text(t, r, c), cell);
            bool right = t->right && t->right[c];
            print_cell(out, cell, w, widths->cols[c], right, c == t->cols - 1);
        }
        fputc('\n', out);
    }
}

void table_print(FILE *out, const struct table *t)
{
    struct table_widths widths;
    memset(&widths, 0, sizeof widths);
    table_print_continued(out, t, true, &widths);
}
