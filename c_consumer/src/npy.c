/* .npy header parsing (versions 1-3) and writing: pure, fuzzable. */
#include "npy.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const unsigned char kMagic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* Copies a header string for a message: at most 24 bytes, non-printables as '?'. */
static void quote(const char *p, size_t n, char *out, size_t outlen) {
    size_t m = n < 24 ? n : 24;
    if (m >= outlen) m = outlen - 1;
    for (size_t i = 0; i < m; i++) {
        unsigned char c = (unsigned char)p[i];
        out[i] = (c < 0x20 || c >= 0x7F) ? '?' : (char)c;
    }
    out[m] = '\0';
}

/* Cursor over the header dict text (a Python literal). */
typedef struct {
    const char *p;
    size_t n;
    size_t i;
} Lex;

static void skip_ws(Lex *lx) {
    while (lx->i < lx->n && (lx->p[lx->i] == ' ' || lx->p[lx->i] == '\t' || lx->p[lx->i] == '\n')) lx->i++;
}

static int eat(Lex *lx, char c) {
    skip_ws(lx);
    if (lx->i < lx->n && lx->p[lx->i] == c) {
        lx->i++;
        return 1;
    }
    return 0;
}

static int peek(Lex *lx) {
    skip_ws(lx);
    return lx->i < lx->n ? (unsigned char)lx->p[lx->i] : -1;
}

/* 'text' or "text" without escapes (numpy never writes any). */
static int lex_str(Lex *lx, const char **s, size_t *len) {
    skip_ws(lx);
    if (lx->i >= lx->n) return -1;
    char q = lx->p[lx->i];
    if (q != '\'' && q != '"') return -1;
    size_t start = ++lx->i;
    while (lx->i < lx->n && lx->p[lx->i] != q) {
        if (lx->p[lx->i] == '\\' || lx->p[lx->i] == '\n') return -1;
        lx->i++;
    }
    if (lx->i >= lx->n) return -1;
    *s = lx->p + start;
    *len = lx->i - start;
    lx->i++;
    return 0;
}

static int lex_word(Lex *lx, const char *w) {
    skip_ws(lx);
    size_t n = strlen(w);
    if (lx->n - lx->i < n || memcmp(lx->p + lx->i, w, n) != 0) return 0;
    /* Whole word only: "Truex" is not True. */
    if (lx->i + n < lx->n) {
        char c = lx->p[lx->i + n];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_') return 0;
    }
    lx->i += n;
    return 1;
}

/* Non-negative decimal int64 without leading zeros (as Python's repr writes).
 * Returns 0, or DIM_SYNTAX / DIM_NEGATIVE / DIM_TOO_LARGE. */
enum { DIM_SYNTAX = 1, DIM_NEGATIVE, DIM_TOO_LARGE };
static int lex_dim(Lex *lx, int64_t *out) {
    skip_ws(lx);
    if (lx->i < lx->n && lx->p[lx->i] == '-') return DIM_NEGATIVE;
    size_t start = lx->i;
    uint64_t v = 0;
    while (lx->i < lx->n && lx->p[lx->i] >= '0' && lx->p[lx->i] <= '9') {
        unsigned d = (unsigned)(lx->p[lx->i] - '0');
        if (v > ((uint64_t)INT64_MAX - d) / 10) return DIM_TOO_LARGE;
        v = v * 10 + d;
        lx->i++;
    }
    size_t len = lx->i - start;
    if (len == 0 || (len > 1 && lx->p[start] == '0')) return DIM_SYNTAX;
    *out = (int64_t)v;
    return 0;
}

/* (), (n,), (n, m), (n, m,) */
static int lex_shape(Lex *lx, NpyInfo *info, char *err, size_t errlen) {
    if (!eat(lx, '(')) {
        set_err(err, errlen, "npy header: 'shape' is not a tuple");
        return -1;
    }
    info->ndim = 0;
    if (eat(lx, ')')) return 0;
    for (;;) {
        int64_t d;
        int bad = lex_dim(lx, &d);
        if (bad) {
            set_err(err, errlen, "npy header: %s dimension %d in 'shape'",
                    bad == DIM_NEGATIVE ? "negative" : bad == DIM_TOO_LARGE ? "too large (> 2^63-1)" : "malformed",
                    info->ndim + 1);
            return -1;
        }
        if (info->ndim == NPY_MAX_DIMS) {
            set_err(err, errlen, "npy header: more than %d dimensions", NPY_MAX_DIMS);
            return -1;
        }
        info->shape[info->ndim++] = d;
        int comma = eat(lx, ',');
        if (eat(lx, ')')) {
            /* (n) is an int in Python, not a tuple. */
            if (info->ndim == 1 && !comma) {
                set_err(err, errlen, "npy header: 'shape' is not a tuple");
                return -1;
            }
            return 0;
        }
        if (!comma) {
            set_err(err, errlen, "npy header: malformed 'shape' tuple");
            return -1;
        }
    }
}

static int parse_dict(const char *h, size_t hn, NpyInfo *info, char *err, size_t errlen) {
    Lex lx = {h, hn, 0};
    int have_descr = 0, have_fortran = 0, have_shape = 0;
    const char *descr = NULL;
    size_t descr_len = 0;
    if (!eat(&lx, '{')) {
        set_err(err, errlen, "npy header: not a dict");
        return -1;
    }
    while (!eat(&lx, '}')) {
        const char *key;
        size_t klen;
        if (lex_str(&lx, &key, &klen) || !eat(&lx, ':')) {
            set_err(err, errlen, "npy header: malformed dict");
            return -1;
        }
        if (klen == 5 && memcmp(key, "descr", 5) == 0) {
            if (have_descr++) goto dup;
            if (peek(&lx) == '[') {
                set_err(err, errlen, "npy: structured dtypes are not supported");
                return -1;
            }
            if (lex_str(&lx, &descr, &descr_len)) {
                set_err(err, errlen, "npy header: 'descr' is not a string");
                return -1;
            }
        } else if (klen == 13 && memcmp(key, "fortran_order", 13) == 0) {
            if (have_fortran++) goto dup;
            if (lex_word(&lx, "True")) {
                set_err(err, errlen, "npy: fortran_order True is not supported (C order only)");
                return -1;
            }
            if (!lex_word(&lx, "False")) {
                set_err(err, errlen, "npy header: 'fortran_order' is not True or False");
                return -1;
            }
        } else if (klen == 5 && memcmp(key, "shape", 5) == 0) {
            if (have_shape++) goto dup;
            if (lex_shape(&lx, info, err, errlen)) return -1;
        } else {
            char q[32];
            quote(key, klen, q, sizeof q);
            set_err(err, errlen, "npy header: unexpected key '%s'", q);
            return -1;
        }
        if (!eat(&lx, ',')) {
            if (!eat(&lx, '}')) {
                set_err(err, errlen, "npy header: malformed dict");
                return -1;
            }
            break;
        }
    }
    skip_ws(&lx);
    if (lx.i != lx.n) {
        set_err(err, errlen, "npy header: trailing bytes after the dict");
        return -1;
    }
    if (!have_descr || !have_fortran || !have_shape) {
        set_err(err, errlen, "npy header: missing key '%s'",
                !have_descr ? "descr" : !have_fortran ? "fortran_order" : "shape");
        return -1;
    }
    info->dtype = tfi_dtype_by_descr(descr, descr_len);
    if (!info->dtype) {
        char q[32];
        quote(descr, descr_len, q, sizeof q);
        set_err(err, errlen, "npy: unsupported dtype descr '%s' (see the contract's dtype table)", q);
        return -1;
    }
    return 0;
dup:
    set_err(err, errlen, "npy header: duplicate key");
    return -1;
}

int npy_parse_header(const unsigned char *buf, size_t buflen, uint64_t file_size, NpyInfo *info, size_t *need,
                     char *err, size_t errlen) {
    memset(info, 0, sizeof *info);
    if (buflen > file_size) buflen = (size_t)file_size; /* never trust more bytes than the file has */
    if (file_size < 10) {
        set_err(err, errlen, "not an npy file: %llu bytes is shorter than the npy preamble",
                (unsigned long long)file_size);
        return -1;
    }
    if (buflen < 10) {
        *need = 10;
        return 1;
    }
    if (memcmp(buf, kMagic, sizeof kMagic) != 0) {
        set_err(err, errlen, "not an npy file (bad magic)");
        return -1;
    }
    int major = buf[6], minor = buf[7];
    if (major < 1 || major > 3 || minor != 0) {
        set_err(err, errlen, "unsupported npy format version %d.%d", major, minor);
        return -1;
    }
    size_t pre = major == 1 ? 10 : 12;
    if (file_size < pre) {
        set_err(err, errlen, "truncated npy file: no header length");
        return -1;
    }
    if (buflen < pre) {
        *need = pre;
        return 1;
    }
    uint64_t hlen = major == 1 ? (uint64_t)buf[8] | (uint64_t)buf[9] << 8
                               : (uint64_t)buf[8] | (uint64_t)buf[9] << 8 | (uint64_t)buf[10] << 16 |
                                     (uint64_t)buf[11] << 24;
    /* numpy writes a few hundred bytes (and its reader refuses more than 10000 by default):
     * refuse absurd lengths before allocating a buffer for them. */
    if (hlen > NPY_MAX_HEADER_LEN) {
        set_err(err, errlen, "npy header length %llu exceeds the %u-byte limit", (unsigned long long)hlen,
                (unsigned)NPY_MAX_HEADER_LEN);
        return -1;
    }
    if (hlen > file_size - pre) {
        set_err(err, errlen, "truncated npy file: header length %llu but only %llu bytes follow",
                (unsigned long long)hlen, (unsigned long long)(file_size - pre));
        return -1;
    }
    if (buflen - pre < hlen) {
        *need = pre + (size_t)hlen;
        return 1;
    }
    info->major = major;
    info->data_offset = pre + hlen;
    if (parse_dict((const char *)buf + pre, (size_t)hlen, info, err, errlen)) return -1;

    uint64_t n = 1;
    for (int i = 0; i < info->ndim; i++) {
        uint64_t d = (uint64_t)info->shape[i];
        if (d != 0 && n > (uint64_t)INT64_MAX / d) {
            set_err(err, errlen, "npy: shape has more than 2^63-1 elements");
            return -1;
        }
        n *= d;
    }
    size_t isz = info->dtype->itemsize;
    if (n > (uint64_t)INT64_MAX / isz) {
        set_err(err, errlen, "npy: %llu %s elements need more than 2^63-1 bytes", (unsigned long long)n,
                info->dtype->name);
        return -1;
    }
    info->n_elems = n;
    info->data_len = n * isz;
    uint64_t have = file_size - info->data_offset;
    if (have != info->data_len) {
        StrBuf sh;
        sb_init(&sh);
        npy_format_shape(&sh, info->shape, info->ndim);
        set_err(err, errlen, "npy: %s shape %s needs %llu data bytes, file has %llu", info->dtype->name,
                sh.failed ? "?" : sh.data, (unsigned long long)info->data_len, (unsigned long long)have);
        sb_free(&sh);
        return -1;
    }
    return 0;
}

int npy_parse(const unsigned char *buf, size_t len, NpyInfo *info, char *err, size_t errlen) {
    size_t need = 0;
    int rc = npy_parse_header(buf, len, len, info, &need, err, errlen);
    if (rc == 1) { /* cannot happen: the whole file is in buf */
        set_err(err, errlen, "npy: internal error (header needs %zu bytes)", need);
        return -1;
    }
    return rc;
}

void npy_format_shape(StrBuf *sb, const int64_t *shape, int ndim) {
    sb_puts(sb, "[");
    for (int i = 0; i < ndim; i++) sb_printf(sb, i ? ", %lld" : "%lld", (long long)shape[i]);
    sb_puts(sb, "]");
}

void npy_write_header(StrBuf *sb, const char *descr, const int64_t *shape, int ndim) {
    StrBuf dict;
    sb_init(&dict);
    sb_printf(&dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int i = 0; i < ndim; i++) sb_printf(&dict, i ? ", %lld" : "%lld", (long long)shape[i]);
    sb_puts(&dict, ndim == 1 ? ",), }" : "), }");
    if (dict.failed) {
        sb->failed = 1;
        sb_free(&dict);
        return;
    }
    /* Same layout as numpy: spaces then '\n' so data starts at a multiple of 64. */
    size_t hlen = dict.len + 1;
    int major = (10 + hlen + 64 > 65535 + 10) ? 2 : 1;
    size_t pre = major == 1 ? 10 : 12;
    size_t pad = 64 - ((pre + hlen) % 64);
    size_t total = hlen + pad;
    unsigned char p[12];
    memcpy(p, kMagic, 6);
    p[6] = (unsigned char)major;
    p[7] = 0;
    p[8] = (unsigned char)(total & 0xFF);
    p[9] = (unsigned char)((total >> 8) & 0xFF);
    p[10] = (unsigned char)((total >> 16) & 0xFF);
    p[11] = (unsigned char)((total >> 24) & 0xFF);
    sb_append(sb, p, pre);
    sb_append(sb, dict.data, dict.len);
    for (size_t i = 0; i < pad; i++) sb_append(sb, " ", 1);
    sb_append(sb, "\n", 1);
    sb_free(&dict);
}
