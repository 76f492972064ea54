/* Growable byte buffer with printf and JSON string escaping. On allocation
 * failure the buffer stays usable but marks itself failed, so callers can check
 * once at the end instead of after every append. */
#ifndef TFI_STRBUF_H
#define TFI_STRBUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct {
    char *data; /* NUL-terminated when non-NULL */
    size_t len;
    size_t cap;
    int failed;
} StrBuf;

void sb_init(StrBuf *sb);
void sb_free(StrBuf *sb);
void sb_clear(StrBuf *sb);
void sb_append(StrBuf *sb, const void *bytes, size_t n);
void sb_puts(StrBuf *sb, const char *s);
void sb_printf(StrBuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* sb_printf's worker. Returns -1, leaving sb unchanged and not marked failed, when fmt
 * cannot be rendered (vsnprintf's error); 0 otherwise, with allocation failures marking
 * sb failed like every other append. ap is left unusable (va_end is the caller's). */
int sb_vprintf(StrBuf *sb, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Appends a quoted JSON string. Bytes that are not valid UTF-8 become U+FFFD. */
void sb_json_str(StrBuf *sb, const char *s, size_t n);
void sb_json_cstr(StrBuf *sb, const char *s);
/* Appends a finite double as a JSON number (non-finite values become null). */
void sb_json_double(StrBuf *sb, double v);

/* Length of the valid UTF-8 sequence starting at s (1..4), or 0 if invalid. */
size_t utf8_seq_len(const unsigned char *s, size_t n);

#endif
