/* JSON in and out, the way the Python side reads and writes it: a row of features from
 * JSON text (an object keyed by column name, or an array in training order) as
 * json.loads and the feature schema take it, and numbers and strings as repr() and
 * json.dumps write them, so a natively served model answers with the same text. */
#include <stdio.h>
#include <stdlib.h>

#include "model.h"

/* -- output --------------------------------------------------------------------------- */

void sqml_buffer_add(SqmlBuffer *b, const char *data, size_t size) {
    if (b->failed) return;
    if (b->size + size + 1 > b->capacity) {
        size_t capacity = b->capacity ? b->capacity : 256;
        while (capacity < b->size + size + 1) capacity *= 2;
        char *grown = realloc(b->data, capacity);
        if (grown == NULL) {
            b->failed = 1;
            return;
        }
        b->data = grown;
        b->capacity = capacity;
    }
    memcpy(b->data + b->size, data, size);
    b->size += size;
    b->data[b->size] = '\0';
}

void sqml_buffer_text(SqmlBuffer *b, const char *text) { sqml_buffer_add(b, text, strlen(text)); }

void sqml_buffer_free(SqmlBuffer *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}

/* "d.ddde+X" of digits (count of them) and a decimal exponent, read back as a double. */
static double read_back(const char *digits, int count, int exponent) {
    char text[48];
    int n = 0;
    text[n++] = digits[0];
    if (count > 1) text[n++] = '.';
    for (int i = 1; i < count; i++) text[n++] = digits[i];
    snprintf(text + n, sizeof text - (size_t)n, "e%d", exponent);
    return strtod(text, NULL);
}

/* digits +1 (step 1) or -1 (step -1) in the last place, carrying; 0 when it leaves count
 * digits (999 + 1, 100 - 1: those neighbours have another length). */
static int neighbour(char *digits, int count, int step) {
    for (int i = count - 1; i >= 0; i--) {
        if (step > 0 && digits[i] < '9') {
            digits[i]++;
            return 1;
        }
        if (step < 0 && digits[i] > '0') {
            digits[i]--;
            return i > 0 || digits[0] != '0';
        }
        digits[i] = step > 0 ? '0' : '9';
    }
    return 0;
}

/* The digits (precision + 1 of them) that read back as value, the closest to it among
 * those: the correctly rounded ones, or a neighbour where those do not read back (a
 * power of two, whose rounding interval is narrower below). 0 when there are none. */
static int digits_at(double value, int precision, char digits[24], int *exponent) {
    char text[40];
    snprintf(text, sizeof text, "%.*e", precision, value);
    int count = 0;
    const char *p = text;
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9') digits[count++] = *p;
    digits[count] = '\0';
    *exponent = atoi(p + 1);
    if (strtod(text, NULL) == value) return 1;
    for (int step = -1; step <= 1; step += 2) {
        char other[24];
        memcpy(other, digits, (size_t)count + 1);
        if (neighbour(other, count, step) && read_back(other, count, *exponent) == value) {
            memcpy(digits, other, (size_t)count + 1);
            return 1;
        }
    }
    return 0;
}

/* The shortest digits that read back as value, the closest to it among those (Python's
 * repr), and the decimal exponent of the first digit. Whether some digits of a given
 * length read back only grows with the length (17 always do), so the shortest length is
 * searched: from the long end first, where most computed values are. */
static void shortest_digits(double value, char digits[24], int *exponent) {
    char found[24];
    int found_exponent;
    if (!digits_at(value, 15, found, &found_exponent)) {
        digits_at(value, 16, found, &found_exponent);
    } else {
        char shorter[24];
        int shorter_exponent;
        int low = 0, high = 15; /* high reads back */
        if (!digits_at(value, 14, shorter, &shorter_exponent)) low = 15;
        else {
            memcpy(found, shorter, sizeof shorter);
            found_exponent = shorter_exponent;
            high = 14;
        }
        while (low < high) {
            int middle = (low + high) / 2;
            if (digits_at(value, middle, shorter, &shorter_exponent)) {
                memcpy(found, shorter, sizeof shorter);
                found_exponent = shorter_exponent;
                high = middle;
            } else {
                low = middle + 1;
            }
        }
    }
    memcpy(digits, found, sizeof found);
    *exponent = found_exponent;
    int n = (int)strlen(digits);
    while (n > 1 && digits[n - 1] == '0') n--;
    digits[n] = '\0';
}

void sqml_buffer_double(SqmlBuffer *b, double value) {
    if (isnan(value)) {
        sqml_buffer_text(b, "nan");
        return;
    }
    if (isinf(value)) {
        sqml_buffer_text(b, value > 0 ? "inf" : "-inf");
        return;
    }
    char out[64];
    size_t n = 0;
    if (signbit(value)) {
        out[n++] = '-';
        value = -value;
    }
    if (value == 0) {
        memcpy(out + n, "0.0", 4);
        sqml_buffer_text(b, out);
        return;
    }
    char digits[24];
    int exponent;
    shortest_digits(value, digits, &exponent);
    int count = (int)strlen(digits);
    if (exponent >= -4 && exponent < 16) { /* fixed notation, always with a fraction */
        if (exponent < 0) {
            out[n++] = '0';
            out[n++] = '.';
            for (int i = 0; i < -exponent - 1; i++) out[n++] = '0';
            for (int i = 0; i < count; i++) out[n++] = digits[i];
        } else {
            for (int i = 0; i <= exponent; i++) out[n++] = i < count ? digits[i] : '0';
            out[n++] = '.';
            if (count > exponent + 1) {
                for (int i = exponent + 1; i < count; i++) out[n++] = digits[i];
            } else {
                out[n++] = '0';
            }
        }
        out[n] = '\0';
    } else { /* d[.ddd]e+XX, at least two exponent digits */
        out[n++] = digits[0];
        if (count > 1) {
            out[n++] = '.';
            for (int i = 1; i < count; i++) out[n++] = digits[i];
        }
        snprintf(out + n, sizeof out - n, "e%c%02d", exponent < 0 ? '-' : '+',
                 exponent < 0 ? -exponent : exponent);
    }
    sqml_buffer_text(b, out);
}

/* One code point from UTF-8 at s (n bytes available); its length in *length (0 when the
 * bytes are not UTF-8). */
static uint32_t decode_utf8(const unsigned char *s, size_t n, size_t *length) {
    unsigned char c = s[0];
    size_t extra;
    uint32_t code;
    *length = 0;
    if (c < 0x80) {
        *length = 1;
        return c;
    }
    if ((c & 0xE0) == 0xC0) extra = 1, code = c & 0x1F;
    else if ((c & 0xF0) == 0xE0) extra = 2, code = c & 0x0F;
    else if ((c & 0xF8) == 0xF0) extra = 3, code = c & 0x07;
    else return 0;
    if (extra >= n) return 0;
    for (size_t k = 1; k <= extra; k++) {
        if ((s[k] & 0xC0) != 0x80) return 0;
        code = code << 6 | (s[k] & 0x3F);
    }
    if ((extra == 1 && code < 0x80) || (extra == 2 && code < 0x800) ||
        (extra == 3 && code < 0x10000) || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF))
        return 0;
    *length = extra + 1;
    return code;
}

void sqml_buffer_json_string(SqmlBuffer *b, const char *text, size_t size) {
    sqml_buffer_add(b, "\"", 1);
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;
    char escape[16];
    while (i < size) {
        size_t run = i;
        while (run < size && s[run] >= 0x20 && s[run] < 0x80 && s[run] != '"' && s[run] != '\\')
            run++;
        if (run > i) sqml_buffer_add(b, text + i, run - i);
        i = run;
        if (i >= size) break;
        unsigned char c = s[i];
        if (c == '"' || c == '\\') {
            escape[0] = '\\';
            escape[1] = (char)c;
            sqml_buffer_add(b, escape, 2);
            i++;
            continue;
        }
        if (c < 0x20) {
            const char *named = c == '\n' ? "\\n" : c == '\r' ? "\\r" : c == '\t' ? "\\t"
                              : c == '\b' ? "\\b" : c == '\f' ? "\\f" : NULL;
            if (named) sqml_buffer_text(b, named);
            else {
                snprintf(escape, sizeof escape, "\\u%04x", c);
                sqml_buffer_text(b, escape);
            }
            i++;
            continue;
        }
        size_t length;
        uint32_t code = decode_utf8(s + i, size - i, &length);
        if (length == 0) { /* not UTF-8: as Python's 'replace' decoding shows it */
            code = 0xFFFD;
            length = 1;
        }
        if (code >= 0x10000) {
            uint32_t v = code - 0x10000;
            snprintf(escape, sizeof escape, "\\u%04x\\u%04x", 0xD800 + (v >> 10),
                     0xDC00 + (v & 0x3FF));
        } else {
            snprintf(escape, sizeof escape, "\\u%04x", code);
        }
        sqml_buffer_text(b, escape);
        i += length;
    }
    sqml_buffer_add(b, "\"", 1);
}

void sqml_shorten(const char *text, size_t size, char *out, size_t out_size) {
    /* Python counts characters: cut after 77 code points when there are more than 80. */
    size_t points = 0, cut = size;
    for (size_t i = 0; i < size; i++) {
        if (((unsigned char)text[i] & 0xC0) != 0x80) {
            if (points == 77) cut = i;
            points++;
        }
    }
    int shortened = points > 80;
    size_t keep = shortened ? cut : size;
    if (keep + 4 > out_size) keep = out_size > 4 ? out_size - 4 : 0;
    memcpy(out, text, keep);
    if (shortened) memcpy(out + keep, "...", 3), keep += 3;
    out[keep] = '\0';
}

void sqml_describe_cell(const SqmlCell *cell, char *out, size_t size) {
    SqmlBuffer b = {0};
    char small[64];
    switch (cell->type) {
    case SQML_CELL_NULL:
        sqml_buffer_text(&b, "null");
        break;
    case SQML_CELL_BOOL:
        sqml_buffer_text(&b, cell->i ? "true" : "false");
        break;
    case SQML_CELL_INTEGER:
        if (cell->text) sqml_buffer_add(&b, cell->text, cell->size);
        else {
            snprintf(small, sizeof small, "%lld", (long long)cell->i);
            sqml_buffer_text(&b, small);
        }
        break;
    case SQML_CELL_BIG_INTEGER:
    case SQML_CELL_NESTED:
        sqml_buffer_add(&b, cell->text, cell->size);
        break;
    case SQML_CELL_REAL:
        if (isnan(cell->d)) sqml_buffer_text(&b, "NaN");
        else if (isinf(cell->d)) sqml_buffer_text(&b, cell->d > 0 ? "Infinity" : "-Infinity");
        else sqml_buffer_double(&b, cell->d);
        break;
    case SQML_CELL_TEXT:
        sqml_buffer_json_string(&b, cell->text, cell->size);
        break;
    default:
        snprintf(small, sizeof small, "a BLOB of %zu bytes", cell->size);
        sqml_buffer_text(&b, small);
    }
    if (b.failed || b.data == NULL) snprintf(out, size, "(a value)");
    else sqml_shorten(b.data, b.size, out, size);
    sqml_buffer_free(&b);
}

/* -- input ---------------------------------------------------------------------------- */

typedef struct Block {
    struct Block *next;
    size_t size, used;
    _Alignas(8) char data[];
} Block;

typedef struct {
    const char *key;
    size_t key_size;
    SqmlCell cell;
} Pair;

struct SqmlJsonScratch {
    Block *blocks;
    Pair *pairs;
    size_t n_pairs, pairs_capacity;
};

SqmlJsonScratch *sqml_json_scratch_new(void) { return calloc(1, sizeof(SqmlJsonScratch)); }

static void scratch_reset(SqmlJsonScratch *s) {
    /* Keep the first block, drop the rest. */
    Block *block = s->blocks;
    if (block) {
        Block *rest = block->next;
        while (rest) {
            Block *next = rest->next;
            free(rest);
            rest = next;
        }
        block->next = NULL;
        block->used = 0;
    }
    s->n_pairs = 0;
}

int sqml_json_scratch_recycle(SqmlJsonScratch *s) {
    scratch_reset(s);
    return (s->blocks == NULL || s->blocks->size <= 65536) && s->pairs_capacity <= 4096;
}

void sqml_json_scratch_free(SqmlJsonScratch *s) {
    if (s == NULL) return;
    scratch_reset(s);
    free(s->blocks);
    free(s->pairs);
    free(s);
}

static char *scratch_alloc(SqmlJsonScratch *s, size_t size) {
    size = (size + 7) & ~(size_t)7; /* every piece aligned for any type */
    Block *block = s->blocks;
    if (block == NULL || block->used + size > block->size) {
        size_t capacity = size > 4096 ? size : 4096;
        Block *fresh = malloc(sizeof(Block) + capacity);
        if (fresh == NULL) return NULL;
        fresh->size = capacity;
        fresh->used = 0;
        if (block == NULL) {
            fresh->next = NULL;
            s->blocks = fresh;
        } else { /* after the first, so that a reset keeps the first */
            fresh->next = block->next;
            block->next = fresh;
            if (block->used + size > block->size) block = fresh;
        }
        block = fresh;
    }
    char *out = block->data + block->used;
    block->used += size;
    return out;
}

typedef struct {
    const char *text;
    size_t size, at;
    SqmlJsonScratch *scratch;
    char *message;
    int status; /* SQML_ENCODED while all is well */
} Parser;

static int invalid(Parser *p, const char *what) {
    char shown[128];
    sqml_shorten(p->text, p->size, shown, sizeof shown);
    snprintf(p->message, SQML_ERROR_SIZE, "%s (at character %zu): %s", what, p->at, shown);
    p->status = SQML_ENCODE_ERROR;
    return 0;
}

static int unusual(Parser *p, const char *what) {
    snprintf(p->message, SQML_ERROR_SIZE, "%s", what);
    p->status = SQML_ENCODE_DEFER;
    return 0;
}

void sqml_json_skip_space(const char *text, size_t size, size_t *at) {
    while (*at < size) {
        char c = text[*at];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        (*at)++;
    }
}

static void skip_space(Parser *p) { sqml_json_skip_space(p->text, p->size, &p->at); }

static int hex4(const char *s, uint32_t *out) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
        else return 0;
    }
    *out = v;
    return 1;
}

static size_t put_utf8(char *out, uint32_t code) {
    if (code < 0x80) {
        out[0] = (char)code;
        return 1;
    }
    if (code < 0x800) {
        out[0] = (char)(0xC0 | code >> 6);
        out[1] = (char)(0x80 | (code & 0x3F));
        return 2;
    }
    if (code < 0x10000) {
        out[0] = (char)(0xE0 | code >> 12);
        out[1] = (char)(0x80 | (code >> 6 & 0x3F));
        out[2] = (char)(0x80 | (code & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | code >> 18);
    out[1] = (char)(0x80 | (code >> 12 & 0x3F));
    out[2] = (char)(0x80 | (code >> 6 & 0x3F));
    out[3] = (char)(0x80 | (code & 0x3F));
    return 4;
}

/* A string at p->at (the opening quote), unescaped into scratch (NUL-terminated). */
static int parse_string(Parser *p, const char **out, size_t *out_size) {
    size_t start = ++p->at, end = start;
    int escaped = 0;
    while (end < p->size && p->text[end] != '"') {
        unsigned char c = (unsigned char)p->text[end];
        if (c < 0x20) {
            p->at = end;
            return invalid(p, "features is not valid JSON (a control character in a string)");
        }
        if (c == '\\') {
            escaped = 1;
            end++;
        }
        end++;
    }
    if (end >= p->size) return invalid(p, "features is not valid JSON (an unterminated string)");
    size_t raw = end - start;
    char *copy = scratch_alloc(p->scratch, raw + 1);
    if (copy == NULL) return unusual(p, "out of memory");
    size_t n = 0;
    if (!escaped) {
        memcpy(copy, p->text + start, raw);
        n = raw;
    } else {
        for (size_t i = start; i < end; i++) {
            char c = p->text[i];
            if (c != '\\') {
                copy[n++] = c;
                continue;
            }
            char e = p->text[++i];
            switch (e) {
            case '"': case '\\': case '/': copy[n++] = e; break;
            case 'b': copy[n++] = '\b'; break;
            case 'f': copy[n++] = '\f'; break;
            case 'n': copy[n++] = '\n'; break;
            case 'r': copy[n++] = '\r'; break;
            case 't': copy[n++] = '\t'; break;
            case 'u': {
                uint32_t code, low;
                if (i + 4 >= end || !hex4(p->text + i + 1, &code)) {
                    p->at = i;
                    return invalid(p, "features is not valid JSON (a bad \\u escape)");
                }
                i += 4;
                if (code >= 0xD800 && code <= 0xDBFF && i + 6 < end && p->text[i + 1] == '\\' &&
                    p->text[i + 2] == 'u' && hex4(p->text + i + 3, &low) && low >= 0xDC00 &&
                    low <= 0xDFFF) {
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                    i += 6;
                } else if (code >= 0xD800 && code <= 0xDFFF) {
                    return unusual(p, "a string holds a lone surrogate");
                }
                n += put_utf8(copy + n, code); /* never longer than the 6-byte escape */
                break;
            }
            default:
                p->at = i;
                return invalid(p, "features is not valid JSON (a bad escape)");
            }
        }
    }
    copy[n] = '\0';
    for (size_t i = 0; i < n;) { /* Python decodes with 'replace': only UTF-8 is exact */
        size_t length;
        decode_utf8((const unsigned char *)copy + i, n - i, &length);
        if (length == 0) return unusual(p, "a string is not valid UTF-8");
        i += length;
    }
    p->at = end + 1;
    *out = copy;
    *out_size = n;
    return 1;
}

/* Where a JSON number's parts are in its text, from scan_number. */
typedef struct {
    size_t end;                  /* after the number (or where it stops being one) */
    size_t whole, whole_end;     /* the integer digits */
    size_t fraction, fraction_end; /* the digits after '.', if any (else empty) */
    size_t exponent, exponent_end; /* the exponent's digits, if any (else empty) */
    int negative, exponent_negative, integer; /* integer: no fraction and no exponent */
} NumberParts;

/* Scans the JSON number at text[at] (RFC 8259's grammar): NULL, or why it is not one,
 * with parts->end where it stops being one. */
static const char *scan_number(const char *t, size_t size, size_t at, NumberParts *parts) {
    size_t i = at;
    memset(parts, 0, sizeof *parts);
    parts->integer = 1;
    if (i < size && t[i] == '-') parts->negative = 1, i++;
    parts->whole = i;
    if (i >= size || t[i] < '0' || t[i] > '9') {
        parts->end = i;
        return "features is not valid JSON (expecting a value)";
    }
    if (t[i] == '0') i++;
    else while (i < size && t[i] >= '0' && t[i] <= '9') i++;
    parts->whole_end = parts->fraction = parts->fraction_end = i;
    if (i < size && t[i] == '.') {
        parts->integer = 0;
        parts->fraction = ++i;
        while (i < size && t[i] >= '0' && t[i] <= '9') i++;
        parts->fraction_end = i;
        if (i == parts->fraction) {
            parts->end = i;
            return "features is not valid JSON (a number without fraction digits)";
        }
    }
    parts->exponent = parts->exponent_end = i;
    if (i < size && (t[i] == 'e' || t[i] == 'E')) {
        parts->integer = 0;
        i++;
        if (i < size && (t[i] == '+' || t[i] == '-')) parts->exponent_negative = t[i++] == '-';
        parts->exponent = i;
        while (i < size && t[i] >= '0' && t[i] <= '9') i++;
        parts->exponent_end = i;
        if (i == parts->exponent) {
            parts->end = i;
            return "features is not valid JSON (a number without exponent digits)";
        }
    }
    parts->end = i;
    return NULL;
}

/* Eight ASCII digits (already checked to be digits) as their value: pairs, then fours,
 * then the eight, each step one multiplication on a word whose first digit is its low
 * byte (byte-swapped on a big-endian machine). */
static uint64_t eight_digits(const char *text) {
    uint64_t v;
    memcpy(&v, text, sizeof v);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = __builtin_bswap64(v);
#endif
    v -= 0x3030303030303030ull;
    v = (v * 10 + (v >> 8)) & 0x00ff00ff00ff00ffull;
    v = (v * 100 + (v >> 16)) & 0x0000ffff0000ffffull;
    return (v * 10000 + (v >> 32)) & 0xffffffffull;
}

static uint64_t add_digits(const char *t, size_t from, size_t to, uint64_t digits) {
    for (; to - from >= 8; from += 8) digits = digits * 100000000u + eight_digits(t + from);
    for (; from < to; from++) digits = digits * 10 + (uint64_t)(t[from] - '0');
    return digits;
}

static const double POWERS_OF_TEN[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                          1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                          1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* A scanned number whose digits (leading zeros aside) fit 2^53 and whose power of ten is
 * at most 22 (what SQLite's json_object writes, 15 significant digits): the digits and
 * the power are both exact doubles, so one multiplication or division rounds correctly
 * (Clinger's fast path). 0 for any other number (strtod reads it). */
static int exact_decimal(const char *t, const NumberParts *n, double *out) {
    size_t whole = n->whole, fraction = n->fraction;
    while (whole < n->whole_end && t[whole] == '0') whole++;
    if (whole == n->whole_end)
        while (fraction < n->fraction_end && t[fraction] == '0') fraction++;
    if ((n->whole_end - whole) + (n->fraction_end - fraction) > 19) return 0; /* uint64 */
    if (n->exponent_end - n->exponent > 4 || n->fraction_end - n->fraction > 100000) return 0;
    uint64_t digits = add_digits(t, fraction, n->fraction_end, add_digits(t, whole, n->whole_end, 0));
    int exponent = (int)add_digits(t, n->exponent, n->exponent_end, 0);
    exponent = (n->exponent_negative ? -exponent : exponent) - (int)(n->fraction_end - n->fraction);
    if (digits > (1ull << 53)) return 0;
    double value = (double)digits;
    if (digits == 0) value = 0.0;
    else if (exponent >= 0 && exponent <= 22) value *= POWERS_OF_TEN[exponent];
    else if (exponent < 0 && exponent >= -22) value /= POWERS_OF_TEN[-exponent];
    else return 0;
    *out = n->negative ? -value : value;
    return 1;
}

double sqml_json_number(const char *text, size_t size) {
    NumberParts parts;
    double value;
    if (scan_number(text, size, 0, &parts) != NULL || parts.end != size ||
        !exact_decimal(text, &parts, &value))
        value = strtod(text, NULL);
    return value;
}

static int parse_number(Parser *p, SqmlCell *cell) {
    size_t start = p->at;
    const char *t = p->text;
    if (start + 1 < p->size && t[start] == '-' && t[start + 1] == 'I')
        return unusual(p, "-Infinity is not standard JSON");
    NumberParts parts;
    const char *error = scan_number(t, p->size, start, &parts);
    p->at = parts.end;
    if (error != NULL) return invalid(p, error);
    size_t length = parts.end - start;
    int integer = parts.integer;
    if (!integer && exact_decimal(t, &parts, &cell->d)) { /* no copy needed */
        cell->type = SQML_CELL_REAL;
        cell->text = NULL;
        cell->size = 0;
        return 1;
    }
    char *copy = scratch_alloc(p->scratch, length + 1);
    if (copy == NULL) return unusual(p, "out of memory");
    memcpy(copy, t + start, length);
    copy[length] = '\0';
    cell->text = copy;
    cell->size = length;
    if (!integer) { /* correctly rounded, as Python's float(): beyond exact_decimal, strtod */
        cell->type = SQML_CELL_REAL;
        cell->d = strtod(copy, NULL);
        cell->text = NULL;
        cell->size = 0;
        return 1;
    }
    size_t digits = copy[0] == '-' ? length - 1 : length;
    if (digits <= 18) {
        cell->type = SQML_CELL_INTEGER;
        cell->i = strtoll(copy, NULL, 10);
    } else {
        cell->type = SQML_CELL_BIG_INTEGER;
    }
    return 1;
}

/* Skip a nested object or array at p->at (validating it), iteratively. */
static int skip_nested(Parser *p) {
    char closers[4096];
    size_t depth = 0;
    enum { VALUE, KEY, AFTER } state = VALUE;
    for (;;) {
        skip_space(p);
        if (p->at >= p->size) return invalid(p, "features is not valid JSON (unexpected end)");
        char c = p->text[p->at];
        if (state == KEY) {
            const char *text;
            size_t size;
            if (c != '"') return invalid(p, "features is not valid JSON (expecting a property name)");
            if (!parse_string(p, &text, &size)) return 0;
            skip_space(p);
            if (p->at >= p->size || p->text[p->at] != ':')
                return invalid(p, "features is not valid JSON (expecting ':')");
            p->at++;
            state = VALUE;
            continue;
        }
        if (state == AFTER) {
            if (c == ',') {
                p->at++;
                state = closers[depth - 1] == '}' ? KEY : VALUE;
                continue;
            }
            if (c != closers[depth - 1])
                return invalid(p, "features is not valid JSON (expecting ',' or a closing bracket)");
            p->at++;
            if (--depth == 0) return 1;
            continue;
        }
        if (c == '{' || c == '[') {
            if (depth == sizeof closers) return unusual(p, "features are nested too deeply");
            closers[depth++] = c == '{' ? '}' : ']';
            p->at++;
            skip_space(p);
            if (p->at < p->size && p->text[p->at] == closers[depth - 1]) {
                p->at++;
                if (--depth == 0) return 1;
                state = AFTER;
                continue;
            }
            state = c == '{' ? KEY : VALUE;
            continue;
        }
        const char *text;
        size_t size;
        SqmlCell ignored;
        if (c == '"') {
            if (!parse_string(p, &text, &size)) return 0;
        } else if (c == 't' && p->size - p->at >= 4 && !memcmp(p->text + p->at, "true", 4)) {
            p->at += 4;
        } else if (c == 'f' && p->size - p->at >= 5 && !memcmp(p->text + p->at, "false", 5)) {
            p->at += 5;
        } else if (c == 'n' && p->size - p->at >= 4 && !memcmp(p->text + p->at, "null", 4)) {
            p->at += 4;
        } else if (c == 'N' || c == 'I') {
            return unusual(p, "NaN and Infinity are not standard JSON");
        } else if (!parse_number(p, &ignored)) {
            return 0;
        }
        state = AFTER;
    }
}

/* A value at p->at: a scalar cell, or a nested container as SQML_CELL_NESTED. */
static int parse_value(Parser *p, SqmlCell *cell) {
    memset(cell, 0, sizeof *cell);
    skip_space(p);
    if (p->at >= p->size) return invalid(p, "features is not valid JSON (expecting a value)");
    char c = p->text[p->at];
    switch (c) {
    case '"':
        cell->type = SQML_CELL_TEXT;
        return parse_string(p, &cell->text, &cell->size);
    case '{':
    case '[': {
        size_t start = p->at;
        if (!skip_nested(p)) return 0;
        cell->type = SQML_CELL_NESTED;
        cell->text = p->text + start;
        cell->size = p->at - start;
        return 1;
    }
    case 't':
        if (p->size - p->at >= 4 && memcmp(p->text + p->at, "true", 4) == 0) {
            p->at += 4;
            cell->type = SQML_CELL_BOOL;
            cell->i = 1;
            return 1;
        }
        break;
    case 'f':
        if (p->size - p->at >= 5 && memcmp(p->text + p->at, "false", 5) == 0) {
            p->at += 5;
            cell->type = SQML_CELL_BOOL;
            return 1;
        }
        break;
    case 'n':
        if (p->size - p->at >= 4 && memcmp(p->text + p->at, "null", 4) == 0) {
            p->at += 4;
            cell->type = SQML_CELL_NULL;
            return 1;
        }
        break;
    case 'N':
    case 'I':
        return unusual(p, "NaN and Infinity are not standard JSON");
    default:
        return parse_number(p, cell);
    }
    return invalid(p, "features is not valid JSON (expecting a value)");
}

static int add_pair(SqmlJsonScratch *s, const char *key, size_t size, const SqmlCell *cell) {
    if (s->n_pairs == s->pairs_capacity) {
        size_t capacity = s->pairs_capacity ? s->pairs_capacity * 2 : 32;
        Pair *grown = realloc(s->pairs, capacity * sizeof(Pair));
        if (grown == NULL) return 0;
        s->pairs = grown;
        s->pairs_capacity = capacity;
    }
    s->pairs[s->n_pairs].key = key;
    s->pairs[s->n_pairs].key_size = size;
    s->pairs[s->n_pairs].cell = *cell;
    s->n_pairs++;
    return 1;
}

static int ascii_equal_folded(const char *a, size_t na, const char *b, size_t nb) {
    if (na != nb) return 0;
    for (size_t i = 0; i < na; i++) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') x = (char)(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = (char)(y - 'A' + 'a');
        if (x != y) return 0;
    }
    return 1;
}

static void quoted_names(const SqmlModel *m, const uint32_t *which, uint32_t count,
                         SqmlBuffer *out) {
    for (uint32_t i = 0; i < count; i++) {
        const SqmlFeature *f = &m->features[which ? which[i] : i];
        if (i) sqml_buffer_text(out, ", ");
        sqml_buffer_text(out, "'");
        sqml_buffer_add(out, f->name.text, f->name.size);
        sqml_buffer_text(out, "'");
    }
}

static int row_message(Parser *p, const SqmlBuffer *b) {
    snprintf(p->message, SQML_ERROR_SIZE, "%s", b->data ? b->data : "features are malformed");
    p->status = SQML_ENCODE_ERROR;
    return 0;
}

static int object_row(Parser *p, const SqmlModel *m, SqmlCell *cells, const char *what,
                      const char *where) {
    SqmlJsonScratch *s = p->scratch;
    p->at++; /* '{' */
    skip_space(p);
    if (p->at < p->size && p->text[p->at] == '}') {
        p->at++;
    } else {
        for (;;) {
            skip_space(p);
            if (p->at >= p->size || p->text[p->at] != '"')
                return invalid(p, "features is not valid JSON (expecting a property name)");
            const char *key;
            size_t key_size;
            if (!parse_string(p, &key, &key_size)) return 0;
            skip_space(p);
            if (p->at >= p->size || p->text[p->at] != ':')
                return invalid(p, "features is not valid JSON (expecting ':')");
            p->at++;
            SqmlCell cell;
            if (!parse_value(p, &cell)) return 0;
            if (!add_pair(s, key, key_size, &cell)) return unusual(p, "out of memory");
            skip_space(p);
            if (p->at < p->size && p->text[p->at] == ',') {
                p->at++;
                continue;
            }
            if (p->at < p->size && p->text[p->at] == '}') {
                p->at++;
                break;
            }
            return invalid(p, "features is not valid JSON (expecting ',' or '}')");
        }
    }
    uint32_t n = m->n_features;
    unsigned char *found = (unsigned char *)scratch_alloc(s, n);
    uint32_t *missing = (uint32_t *)scratch_alloc(s, (size_t)n * sizeof(uint32_t) + 4);
    if (found == NULL || missing == NULL) return unusual(p, "out of memory");
    memset(found, 0, n);
    for (size_t i = 0; i < s->n_pairs; i++) { /* the last of repeated keys wins, as in a dict */
        int64_t f = sqml_model_feature_named(m, s->pairs[i].key, s->pairs[i].key_size);
        if (f >= 0) {
            cells[f] = s->pairs[i].cell;
            found[f] = 1;
        }
    }
    uint32_t n_missing = 0;
    for (uint32_t f = 0; f < n; f++) {
        if (found[f]) continue;
        /* SQLite's column names ignore ASCII case: so may keys, when just one key fits
         * (repeats of that one key aside: the last of them counts, as in a dict) */
        const SqmlText *name = &m->features[f].name;
        const Pair *last = NULL;
        int several = 0;
        for (size_t i = 0; i < s->n_pairs; i++) {
            const Pair *pair = &s->pairs[i];
            if (!ascii_equal_folded(pair->key, pair->key_size, name->text, name->size)) continue;
            if (last != NULL && (last->key_size != pair->key_size ||
                                 memcmp(last->key, pair->key, pair->key_size) != 0))
                several = 1;
            last = pair;
        }
        if (last != NULL && !several) {
            cells[f] = last->cell;
            continue;
        }
        missing[n_missing++] = f;
    }
    if (n_missing) {
        SqmlBuffer b = {0};
        sqml_buffer_text(&b, what);
        sqml_buffer_text(&b, where);
        sqml_buffer_text(&b, " lack ");
        quoted_names(m, missing, n_missing, &b);
        sqml_buffer_text(&b, "; the model expects ");
        quoted_names(m, NULL, n, &b);
        row_message(p, &b);
        sqml_buffer_free(&b);
        return 0;
    }
    return 1;
}

static int array_row(Parser *p, const SqmlModel *m, SqmlCell *cells, const char *what,
                     const char *where) {
    p->at++; /* '[' */
    uint32_t count = 0;
    skip_space(p);
    if (p->at < p->size && p->text[p->at] == ']') {
        p->at++;
    } else {
        for (;;) {
            SqmlCell cell;
            if (!parse_value(p, &cell)) return 0;
            if (count < m->n_features) cells[count] = cell;
            count++;
            skip_space(p);
            if (p->at < p->size && p->text[p->at] == ',') {
                p->at++;
                continue;
            }
            if (p->at < p->size && p->text[p->at] == ']') {
                p->at++;
                break;
            }
            return invalid(p, "features is not valid JSON (expecting ',' or ']')");
        }
    }
    if (count != m->n_features) {
        SqmlBuffer b = {0};
        char head[64];
        sqml_buffer_text(&b, what);
        sqml_buffer_text(&b, where);
        snprintf(head, sizeof head, " is an array of %u values but the model expects %u", count,
                 m->n_features);
        sqml_buffer_text(&b, head);
        sqml_buffer_text(&b, ", in this order: ");
        quoted_names(m, NULL, m->n_features, &b);
        row_message(p, &b);
        sqml_buffer_free(&b);
        return 0;
    }
    return 1;
}

int sqml_json_row(const SqmlModel *m, const char *text, size_t size, size_t *position,
                  SqmlJsonScratch *scratch, SqmlCell *cells, const char *what,
                  const char *where, char message[SQML_ERROR_SIZE]) {
    scratch_reset(scratch);
    Parser p = {text, size, *position, scratch, message, SQML_ENCODED};
    skip_space(&p);
    int ok;
    if (p.at < size && text[p.at] == '{') {
        ok = object_row(&p, m, cells, what, where);
    } else if (p.at < size && text[p.at] == '[') {
        ok = array_row(&p, m, cells, what, where);
    } else {
        SqmlCell cell;
        if (!parse_value(&p, &cell)) return p.status;
        char shown[128];
        sqml_describe_cell(&cell, shown, sizeof shown);
        snprintf(message, SQML_ERROR_SIZE,
                 "%s%s must be a JSON object keyed by column name or a JSON array in "
                 "training-column order, got %s",
                 what, where, shown);
        return SQML_ENCODE_ERROR;
    }
    if (!ok) return p.status;
    *position = p.at;
    return SQML_ENCODED;
}
