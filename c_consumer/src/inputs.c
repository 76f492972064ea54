/* Reading the job's input files into TF_Tensors: numeric .npy and the two-file string encoding. */
#define _POSIX_C_SOURCE 200809L

#include "inputs.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "npy.h"
#include "tensorflow/c/tf_tstring.h"

/* Opens an npy file, parses its header, leaves the stream at the first data byte. */
static FILE *open_npy(const Port *p, const char *path, NpyInfo *info, JobRecord *rec) {
    const char *key = p->pt->key;
    FILE *f = fopen(path, "rb");
    if (!f) {
        set_err(rec, "read_input", "input '%s': cannot open '%s': %s", key, path, strerror(errno));
        return NULL;
    }
    struct stat sbuf;
    if (fstat(fileno(f), &sbuf) != 0 || !S_ISREG(sbuf.st_mode)) {
        set_err(rec, "read_input", "input '%s': '%s' is not a regular file", key, path);
        fclose(f);
        return NULL;
    }
    uint64_t size = (uint64_t)sbuf.st_size;
    size_t have = 0, cap = 256;
    unsigned char *buf = NULL;
    char err[256];
    for (;;) {
        unsigned char *nb = realloc(buf, cap);
        if (!nb) {
            set_err(rec, "read_input", "input '%s': out of memory reading '%s'", key, path);
            goto bad;
        }
        buf = nb;
        size_t want = cap;
        if ((uint64_t)want > size) want = (size_t)size;
        if (want > have) {
            errno = 0;
            size_t got = fread(buf + have, 1, want - have, f);
            if (got != want - have) {
                set_err(rec, "read_input", "input '%s': cannot read '%s': %s", key, path, errno_msg(errno));
                goto bad;
            }
            have = want;
        }
        size_t need = 0;
        int rc = npy_parse_header(buf, have, size, info, &need, err, sizeof err);
        if (rc == 0) break;
        if (rc < 0 || need <= have) {
            if (rc > 0) snprintf(err, sizeof err, "npy: internal error in header reading");
            set_err(rec, "read_input", "input '%s': bad npy file '%s': %s", key, path, err);
            goto bad;
        }
        cap = need;
    }
    free(buf);
    if (fseeko(f, (off_t)info->data_offset, SEEK_SET) != 0) {
        set_err(rec, "read_input", "input '%s': cannot seek in '%s': %s", key, path, strerror(errno));
        fclose(f);
        return NULL;
    }
    return f;
bad:
    free(buf);
    fclose(f);
    return NULL;
}

/* The graph's static shape, where known, must admit the file's shape. */
static int check_shape(const Model *m, const Port *p, const char *path, const int64_t *shape, int ndim,
                       JobRecord *rec) {
    int gnd = TF_GraphGetTensorNumDims(m->graph, p->port, m->st);
    if (TF_GetCode(m->st) != TF_OK) {
        set_err(rec, "read_input", "input '%s': cannot get the graph shape of '%s': %s", p->pt->key, p->name,
                tf_msg(m->st));
        return -1;
    }
    if (gnd < 0) return 0; /* unknown rank */
    int64_t gdims[NPY_MAX_DIMS];
    int ok = gnd == ndim;
    if (gnd <= NPY_MAX_DIMS) {
        TF_GraphGetTensorShape(m->graph, p->port, gdims, gnd, m->st);
        if (TF_GetCode(m->st) != TF_OK) {
            set_err(rec, "read_input", "input '%s': cannot get the graph shape of '%s': %s", p->pt->key, p->name,
                    tf_msg(m->st));
            return -1;
        }
        for (int i = 0; ok && i < ndim; i++)
            if (gdims[i] >= 0 && gdims[i] != shape[i]) ok = 0;
    }
    if (ok) return 0;
    StrBuf fs, gs;
    sb_init(&fs);
    sb_init(&gs);
    npy_format_shape(&fs, shape, ndim);
    if (gnd <= NPY_MAX_DIMS) {
        sb_puts(&gs, "[");
        for (int i = 0; i < gnd; i++) {
            if (i) sb_puts(&gs, ", ");
            if (gdims[i] < 0)
                sb_puts(&gs, "?");
            else
                sb_printf(&gs, "%lld", (long long)gdims[i]);
        }
        sb_puts(&gs, "]");
    } else {
        sb_printf(&gs, "rank %d", gnd);
    }
    set_err(rec, "read_input", "input '%s': file has shape %s, graph expects %s (%s)", p->pt->key,
            fs.failed ? "?" : fs.data, gs.failed ? "?" : gs.data, path);
    sb_free(&fs);
    sb_free(&gs);
    return -1;
}

static int read_numeric_input(const Model *m, Port *p, TF_Tensor **out, JobRecord *rec) {
    const char *key = p->pt->key, *path = p->pt->file;
    NpyInfo info;
    FILE *f = open_npy(p, path, &info, rec);
    if (!f) return -1;
    int rc = -1;
    if ((int)p->gdtype != info.dtype->code) {
        set_err(rec, "read_input", "input '%s': file has %s, graph expects %s (%s)", key, info.dtype->name,
                tf_dtype_name(p->gdtype), path);
        goto done;
    }
    if (check_shape(m, p, path, info.shape, info.ndim, rec)) goto done;
    if (info.data_len > SIZE_MAX) {
        set_err(rec, "read_input", "input '%s': '%s' is too large", key, path);
        goto done;
    }
    TF_Tensor *t = TF_AllocateTensor(p->gdtype, info.shape, info.ndim, (size_t)info.data_len);
    if (!t) {
        set_err(rec, "read_input", "input '%s': cannot allocate a %llu-byte tensor", key,
                (unsigned long long)info.data_len);
        goto done;
    }
    unsigned char *data = TF_TensorData(t);
    errno = 0;
    if (info.data_len && fread(data, 1, (size_t)info.data_len, f) != info.data_len) {
        set_err(rec, "read_input", "input '%s': cannot read '%s': %s", key, path, errno_msg(errno));
        TF_DeleteTensor(t);
        goto done;
    }
    if (p->gdtype == TF_BOOL) {
        /* Anything but 0/1 is not a bool TensorFlow can rely on. */
        for (uint64_t i = 0; i < info.data_len; i++)
            if (data[i] > 1) {
                set_err(rec, "read_input", "input '%s': bool element %llu of '%s' is %u, not 0 or 1", key,
                        (unsigned long long)i, path, data[i]);
                TF_DeleteTensor(t);
                goto done;
            }
    }
    *out = t;
    rc = 0;
done:
    fclose(f);
    return rc;
}

static void free_tstrings(TF_Tensor *t) {
    TF_TString *s = TF_TensorData(t);
    size_t n = (size_t)TF_TensorElementCount(t);
    for (size_t i = 0; i < n; i++) TF_StringDealloc(&s[i]);
}

static int read_string_input(const Model *m, Port *p, TF_Tensor **out, JobRecord *rec) {
    const char *key = p->pt->key, *path = p->pt->file;
    NpyInfo info;
    FILE *f = open_npy(p, path, &info, rec);
    if (!f) return -1;
    int64_t *lens = NULL;
    char *bytes = NULL;
    char *bpath = NULL;
    FILE *bf = NULL;
    int rc = -1;
    if (info.dtype->code != TF_INT64) {
        set_err(rec, "read_input", "input '%s': string lengths file '%s' has %s, expected int64", key, path,
                info.dtype->name);
        goto done;
    }
    if (check_shape(m, p, path, info.shape, info.ndim, rec)) goto done;
    uint64_t n = info.n_elems;
    if (n > SIZE_MAX / sizeof(TF_TString)) {
        set_err(rec, "read_input", "input '%s': '%s' has too many elements", key, path);
        goto done;
    }
    lens = malloc(n ? (size_t)n * sizeof *lens : 1);
    if (!lens) {
        set_err(rec, "read_input", "input '%s': out of memory for %llu string lengths", key, (unsigned long long)n);
        goto done;
    }
    errno = 0;
    if (n && fread(lens, sizeof *lens, (size_t)n, f) != n) {
        set_err(rec, "read_input", "input '%s': cannot read '%s': %s", key, path, errno_msg(errno));
        goto done;
    }
    uint64_t total = 0;
    for (uint64_t i = 0; i < n; i++) {
        /* The file is little-endian; so is every host TensorFlow's wheel supports. */
        if (lens[i] < 0) {
            set_err(rec, "read_input", "input '%s': string length %lld of element %llu in '%s' is negative", key,
                    (long long)lens[i], (unsigned long long)i, path);
            goto done;
        }
        if ((uint64_t)lens[i] > SIZE_MAX - total) {
            set_err(rec, "read_input", "input '%s': string lengths in '%s' overflow", key, path);
            goto done;
        }
        total += (uint64_t)lens[i];
    }
    size_t plen = strlen(path);
    bpath = malloc(plen + 7);
    if (!bpath) {
        set_err(rec, "read_input", "input '%s': out of memory", key);
        goto done;
    }
    memcpy(bpath, path, plen);
    memcpy(bpath + plen, ".bytes", 7);
    bf = fopen(bpath, "rb");
    if (!bf) {
        set_err(rec, "read_input", "input '%s': cannot open '%s': %s", key, bpath, strerror(errno));
        goto done;
    }
    struct stat sbuf;
    if (fstat(fileno(bf), &sbuf) != 0 || !S_ISREG(sbuf.st_mode)) {
        set_err(rec, "read_input", "input '%s': '%s' is not a regular file", key, bpath);
        goto done;
    }
    if ((uint64_t)sbuf.st_size != total) {
        set_err(rec, "read_input", "input '%s': '%s' has %lld bytes, but the lengths in '%s' add up to %llu", key,
                bpath, (long long)sbuf.st_size, path, (unsigned long long)total);
        goto done;
    }
    bytes = malloc(total ? (size_t)total : 1);
    if (!bytes) {
        set_err(rec, "read_input", "input '%s': out of memory for %llu string bytes", key, (unsigned long long)total);
        goto done;
    }
    errno = 0;
    if (total && fread(bytes, 1, (size_t)total, bf) != total) {
        set_err(rec, "read_input", "input '%s': cannot read '%s': %s", key, bpath, errno_msg(errno));
        goto done;
    }
    TF_Tensor *t = TF_AllocateTensor(TF_STRING, info.shape, info.ndim, (size_t)n * sizeof(TF_TString));
    if (!t) {
        set_err(rec, "read_input", "input '%s': cannot allocate a string tensor of %llu elements", key,
                (unsigned long long)n);
        goto done;
    }
    /* Initialise every element before use. free_inputs() deallocates them before
     * TF_DeleteTensor: TF 2.21 frees them there too (checked under valgrind),
     * and TF_StringDealloc leaves an empty string, so doing both is safe and
     * stays leak-free on builds that don't. */
    TF_TString *s = TF_TensorData(t);
    for (uint64_t i = 0; i < n; i++) TF_StringInit(&s[i]);
    size_t off = 0;
    for (uint64_t i = 0; i < n; i++) {
        TF_StringCopy(&s[i], bytes + off, (size_t)lens[i]);
        off += (size_t)lens[i];
    }
    p->owns_tstrings = 1;
    *out = t;
    rc = 0;
done:
    if (bf) fclose(bf);
    fclose(f);
    free(bpath);
    free(bytes);
    free(lens);
    return rc;
}

int read_input(const Model *m, Port *p, TF_Tensor **out, JobRecord *rec) {
    return p->gdtype == TF_STRING ? read_string_input(m, p, out, rec) : read_numeric_input(m, p, out, rec);
}

void free_inputs(const Port *ports, TF_Tensor **vals, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (vals[i]) {
            if (ports[i].owns_tstrings) free_tstrings(vals[i]);
            TF_DeleteTensor(vals[i]);
        }
}
