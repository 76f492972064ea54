/* Growable byte buffer: appends, printf, JSON string escaping. */
#include "strbuf.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sb_init(StrBuf *sb) {
    sb->data = NULL;
    sb->len = 0;
    sb->cap = 0;
    sb->failed = 0;
}

void sb_free(StrBuf *sb) {
    free(sb->data);
    sb_init(sb);
}

void sb_clear(StrBuf *sb) {
    sb->len = 0;
    sb->failed = 0;
    if (sb->data) sb->data[0] = '\0';
}

static int sb_reserve(StrBuf *sb, size_t extra) {
    if (sb->failed) return 0;
    if (extra >= SIZE_MAX - sb->len) {
        sb->failed = 1;
        return 0;
    }
    size_t need = sb->len + extra + 1;
    if (need <= sb->cap) return 1;
    size_t cap = sb->cap ? sb->cap : 64;
    while (cap < need) cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    char *p = realloc(sb->data, cap);
    if (!p) {
        sb->failed = 1;
        return 0;
    }
    sb->data = p;
    sb->cap = cap;
    return 1;
}

void sb_append(StrBuf *sb, const void *bytes, size_t n) {
    if (!sb_reserve(sb, n)) return;
    if (n) memcpy(sb->data + sb->len, bytes, n);
    sb->len += n;
    sb->data[sb->len] = '\0';
}

void sb_puts(StrBuf *sb, const char *s) { sb_append(sb, s, strlen(s)); }

int sb_vprintf(StrBuf *sb, const char *fmt, va_list ap) {
    va_list again;
    va_copy(again, ap);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    if (n < 0) {
        va_end(again);
        return -1;
    }
    if ((size_t)n < sizeof small) {
        sb_append(sb, small, (size_t)n);
    } else if (sb_reserve(sb, (size_t)n)) {
        vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, again);
        sb->len += (size_t)n;
    }
    va_end(again);
    return 0;
}

void sb_printf(StrBuf *sb, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (sb_vprintf(sb, fmt, ap) < 0) sb->failed = 1;
    va_end(ap);
}

size_t utf8_seq_len(const unsigned char *s, size_t n) {
    if (n == 0) return 0;
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t len;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) lo = 0xA0;      /* overlong */
        else if (c == 0xED) hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) lo = 0x90;      /* overlong */
        else if (c == 0xF4) hi = 0x8F; /* > U+10FFFF */
    } else {
        return 0;
    }
    if (n < len) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xBF) return 0;
    return len;
}

void sb_json_str(StrBuf *sb, const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    sb_append(sb, "\"", 1);
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        if (c == '"') {
            sb_append(sb, "\\\"", 2);
        } else if (c == '\\') {
            sb_append(sb, "\\\\", 2);
        } else if (c == '\n') {
            sb_append(sb, "\\n", 2);
        } else if (c == '\r') {
            sb_append(sb, "\\r", 2);
        } else if (c == '\t') {
            sb_append(sb, "\\t", 2);
        } else if (c < 0x20 || c == 0x7F) {
            sb_printf(sb, "\\u%04x", c);
        } else if (c < 0x80) {
            sb_append(sb, p + i, 1);
        } else {
            size_t k = utf8_seq_len(p + i, n - i);
            if (k == 0) {
                sb_append(sb, "\\ufffd", 6);
                k = 1;
            } else {
                sb_append(sb, p + i, k);
            }
            i += k;
            continue;
        }
        i++;
    }
    sb_append(sb, "\"", 1);
}

void sb_json_cstr(StrBuf *sb, const char *s) { sb_json_str(sb, s, strlen(s)); }

void sb_json_double(StrBuf *sb, double v) {
    if (!isfinite(v)) {
        sb_puts(sb, "null");
        return;
    }
    sb_printf(sb, "%.9g", v);
}
