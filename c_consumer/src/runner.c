#define _POSIX_C_SOURCE 200809L

#include "runner.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "dtypes.h"
#include "npy.h"
#include "tensorflow/c/c_api.h"
#include "tensorflow/c/tf_tstring.h"

/* dtypes.h mirrors TF_DataType so the parsers need no TensorFlow headers. */
_Static_assert((int)TFI_FLOAT == (int)TF_FLOAT &&
                   (int)TFI_DOUBLE == (int)TF_DOUBLE &&
                   (int)TFI_INT32 == (int)TF_INT32 &&
                   (int)TFI_UINT8 == (int)TF_UINT8 &&
                   (int)TFI_INT16 == (int)TF_INT16 &&
                   (int)TFI_INT8 == (int)TF_INT8 &&
                   (int)TFI_STRING == (int)TF_STRING &&
                   (int)TFI_COMPLEX64 == (int)TF_COMPLEX64 &&
                   (int)TFI_INT64 == (int)TF_INT64 &&
                   (int)TFI_BOOL == (int)TF_BOOL &&
                   (int)TFI_UINT16 == (int)TF_UINT16 &&
                   (int)TFI_COMPLEX128 == (int)TF_COMPLEX128 &&
                   (int)TFI_HALF == (int)TF_HALF &&
                   (int)TFI_UINT32 == (int)TF_UINT32 &&
                   (int)TFI_UINT64 == (int)TF_UINT64,
               "dtype codes must match TF_DataType");

typedef struct {
    const PlanTensor *pt;
    const char *what;     /* "input" / "output" */
    const char *name;     /* tensor name used: TENSOR, or KEY for frozen when TENSOR is "-" */
    char *op_name;
    TF_Output port;
    TF_DataType gdtype;   /* graph dtype, reference types mapped to their base */
    int owns_tstrings;    /* input tensor whose TF_TStrings we initialised */
} Port;

typedef struct {
    const PlanJob *job;
    TF_Status *st;
    TF_Graph *graph;
    TF_SessionOptions *opts;
    TF_Session *sess;
    Port *in;
    Port *out;
    TF_Output *in_ports;
    TF_Output *out_ports;
    TF_Tensor **in_vals;
    TF_Tensor **out_vals;
    double load_s, first_run_s;
    double *steady;
    size_t steady_cap; /* grows with the runs: `repeat` (up to 2^32-1) is user data */
    const char *stage;
    StrBuf err;
    StrBuf outputs_json;
} Job;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

size_t tfi_thread_config(int32_t intra, int32_t inter, unsigned char out[12]) {
    size_t n = 0;
    const int32_t vals[2] = {intra, inter};
    const unsigned char tags[2] = {(2 << 3) | 0, (5 << 3) | 0}; /* field number, wire type varint */
    for (int i = 0; i < 2; i++) {
        if (vals[i] <= 0) continue;
        out[n++] = tags[i];
        uint32_t v = (uint32_t)vals[i];
        while (v >= 0x80) {
            out[n++] = (unsigned char)(v | 0x80);
            v >>= 7;
        }
        out[n++] = (unsigned char)v;
    }
    return n;
}

/* Names for every TF dtype, so messages about unsupported ones are readable. */
static const char *tf_dtype_name(TF_DataType dt) {
    const TfiDtype *d = tfi_dtype_by_code((int)dt);
    if (d) return d->name;
    switch ((int)dt) {
        case TF_QINT8: return "qint8";
        case TF_QUINT8: return "quint8";
        case TF_QINT32: return "qint32";
        case TF_BFLOAT16: return "bfloat16";
        case TF_QINT16: return "qint16";
        case TF_QUINT16: return "quint16";
        case TF_RESOURCE: return "resource";
        case TF_VARIANT: return "variant";
        default: return NULL;
    }
}

static void fail(Job *j, const char *stage, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fail(Job *j, const char *stage, const char *fmt, ...) {
    if (j->stage) return; /* keep the first failure */
    j->stage = stage;
    va_list ap;
    va_start(ap, fmt);
    char small[512];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        sb_puts(&j->err, "(could not format the error message)");
    } else if ((size_t)n < sizeof small) {
        sb_append(&j->err, small, (size_t)n);
    } else {
        char *big = malloc((size_t)n + 1);
        if (!big) {
            j->err.failed = 1;
            return;
        }
        va_start(ap, fmt);
        vsnprintf(big, (size_t)n + 1, fmt, ap);
        va_end(ap);
        sb_append(&j->err, big, (size_t)n);
        free(big);
    }
}

/* TensorFlow's message, never empty. */
static const char *tf_msg(TF_Status *st) {
    const char *m = TF_Message(st);
    return (m && *m) ? m : "(TensorFlow gave no message)";
}

static const char *errno_msg(int e) { return e ? strerror(e) : "unexpected end of file"; }

/* ---- loading ------------------------------------------------------------ */

static int read_whole_file(const char *path, char **data, size_t *len, int *err_no) {
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        *err_no = errno;
        return -1;
    }
    struct stat sbuf;
    if (fstat(fileno(f), &sbuf) != 0) {
        *err_no = errno;
        fclose(f);
        return -1;
    }
    if (!S_ISREG(sbuf.st_mode)) {
        *err_no = S_ISDIR(sbuf.st_mode) ? EISDIR : EINVAL;
        fclose(f);
        return -1;
    }
    /* A serialized proto cannot exceed 2 GiB (protobuf's limit): refuse before allocating. */
    if ((uint64_t)sbuf.st_size > (uint64_t)INT32_MAX) {
        *err_no = EFBIG;
        fclose(f);
        return -1;
    }
    size_t n = (size_t)sbuf.st_size;
    char *buf = malloc(n ? n : 1);
    if (!buf) {
        *err_no = ENOMEM;
        fclose(f);
        return -1;
    }
    errno = 0;
    if (n && fread(buf, 1, n, f) != n) {
        *err_no = errno ? errno : EIO;
        free(buf);
        fclose(f);
        return -1;
    }
    fclose(f);
    *data = buf;
    *len = n;
    return 0;
}

static int load_model(Job *j, const Plan *plan) {
    const PlanJob *job = j->job;
    j->opts = TF_NewSessionOptions();
    j->graph = TF_NewGraph();
    if (plan->has_threads) {
        unsigned char cfg[12];
        size_t n = tfi_thread_config(plan->intra_threads, plan->inter_threads, cfg);
        if (n) {
            TF_SetConfig(j->opts, cfg, n, j->st);
            if (TF_GetCode(j->st) != TF_OK) {
                fail(j, "load", "cannot apply threads %d,%d to the session options: %s", plan->intra_threads,
                     plan->inter_threads, tf_msg(j->st));
                return -1;
            }
        }
    }
    if (job->format == PLAN_FORMAT_FROZEN) {
        char *data;
        size_t len;
        int e = 0;
        if (read_whole_file(job->model, &data, &len, &e)) {
            fail(j, "load", "cannot read frozen graph '%s': %s", job->model,
                 e == EFBIG ? "larger than 2 GiB, the protobuf limit for a GraphDef" : strerror(e));
            return -1;
        }
        TF_Buffer *buf = TF_NewBufferFromString(data, len);
        free(data);
        TF_ImportGraphDefOptions *io = TF_NewImportGraphDefOptions();
        TF_GraphImportGraphDef(j->graph, buf, io, j->st);
        TF_DeleteImportGraphDefOptions(io);
        TF_DeleteBuffer(buf);
        if (TF_GetCode(j->st) != TF_OK) {
            fail(j, "load", "cannot import frozen graph '%s': %s", job->model, tf_msg(j->st));
            return -1;
        }
        j->sess = TF_NewSession(j->graph, j->opts, j->st);
        if (TF_GetCode(j->st) != TF_OK) {
            j->sess = NULL;
            fail(j, "load", "cannot create a session for '%s': %s", job->model, tf_msg(j->st));
            return -1;
        }
        return 0;
    }
    /* SavedModel: split the comma-separated tag set (the plan refused empty tags). */
    char *tags = strdup(job->tags ? job->tags : "serve");
    if (!tags) {
        fail(j, "load", "out of memory");
        return -1;
    }
    int ntags = 1;
    for (char *p = tags; *p; p++)
        if (*p == ',') ntags++;
    const char **tagv = malloc((size_t)ntags * sizeof *tagv);
    if (!tagv) {
        free(tags);
        fail(j, "load", "out of memory");
        return -1;
    }
    int k = 0;
    tagv[k++] = tags;
    for (char *p = tags; *p; p++)
        if (*p == ',') {
            *p = '\0';
            tagv[k++] = p + 1;
        }
    j->sess = TF_LoadSessionFromSavedModel(j->opts, NULL, job->model, tagv, ntags, j->graph, NULL, j->st);
    free(tagv);
    free(tags);
    if (TF_GetCode(j->st) != TF_OK) {
        j->sess = NULL;
        fail(j, "load", "cannot load SavedModel '%s' with tags '%s': %s", job->model,
             job->tags ? job->tags : "serve", tf_msg(j->st));
        return -1;
    }
    return 0;
}

/* ---- resolving tensor names --------------------------------------------- */

/* "op:idx" or "op" (index 0). */
static int split_tensor_name(const char *name, char **op, int *index) {
    const char *colon = strrchr(name, ':');
    *index = 0;
    size_t oplen = strlen(name);
    if (colon && colon[1]) {
        long v = 0;
        const char *p = colon + 1;
        for (; *p >= '0' && *p <= '9'; p++) {
            v = v * 10 + (*p - '0');
            if (v > INT_MAX) break;
        }
        if (*p == '\0') {
            *index = (int)v;
            oplen = (size_t)(colon - name);
        } else if (v > INT_MAX) {
            return -1;
        }
    }
    *op = malloc(oplen + 1);
    if (!*op) return -1;
    memcpy(*op, name, oplen);
    (*op)[oplen] = '\0';
    return 0;
}

static int resolve_port(Job *j, Port *p) {
    const PlanTensor *pt = p->pt;
    if (strcmp(pt->tensor, "-") != 0) {
        p->name = pt->tensor;
    } else if (j->job->format == PLAN_FORMAT_FROZEN) {
        p->name = pt->key;
    } else {
        fail(j, "resolve",
             "%s '%s': the plan gives no TENSOR and the C consumer cannot resolve signature keys itself",
             p->what, pt->key);
        return -1;
    }
    int index;
    if (split_tensor_name(p->name, &p->op_name, &index)) {
        fail(j, "resolve", "%s '%s': bad tensor name '%s'", p->what, pt->key, p->name);
        return -1;
    }
    TF_Operation *op = TF_GraphOperationByName(j->graph, p->op_name);
    if (!op) {
        fail(j, "resolve", "%s '%s': tensor '%s' not found: the graph has no operation '%s'", p->what, pt->key,
             p->name, p->op_name);
        return -1;
    }
    int nout = TF_OperationNumOutputs(op);
    if (index >= nout) {
        fail(j, "resolve", "%s '%s': tensor '%s' not found: operation '%s' has %d output%s", p->what, pt->key,
             p->name, p->op_name, nout, nout == 1 ? "" : "s");
        return -1;
    }
    p->port.oper = op;
    p->port.index = index;
    TF_DataType dt = TF_OperationOutputType(p->port);
    if ((int)dt > 100) dt = (TF_DataType)((int)dt - 100); /* reference types (TF1 variables) fetch as their base */
    p->gdtype = dt;
    if (!tfi_dtype_by_code((int)dt)) {
        const char *nm = tf_dtype_name(dt);
        if (nm)
            fail(j, "resolve", "%s '%s': tensor '%s' has dtype %s, which the contract does not support", p->what,
                 pt->key, p->name, nm);
        else
            fail(j, "resolve", "%s '%s': tensor '%s' has TF_DataType %d, which the contract does not support",
                 p->what, pt->key, p->name, (int)dt);
        return -1;
    }
    return 0;
}

/* ---- reading inputs ------------------------------------------------------ */

/* Opens an npy file, parses its header, leaves the stream at the first data byte. */
static FILE *open_npy(Job *j, const Port *p, const char *path, NpyInfo *info) {
    const char *key = p->pt->key;
    FILE *f = fopen(path, "rb");
    if (!f) {
        fail(j, "read_input", "input '%s': cannot open '%s': %s", key, path, strerror(errno));
        return NULL;
    }
    struct stat sbuf;
    if (fstat(fileno(f), &sbuf) != 0 || !S_ISREG(sbuf.st_mode)) {
        fail(j, "read_input", "input '%s': '%s' is not a regular file", key, path);
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
            fail(j, "read_input", "input '%s': out of memory reading '%s'", key, path);
            goto bad;
        }
        buf = nb;
        size_t want = cap;
        if ((uint64_t)want > size) want = (size_t)size;
        if (want > have) {
            errno = 0;
            size_t got = fread(buf + have, 1, want - have, f);
            if (got != want - have) {
                fail(j, "read_input", "input '%s': cannot read '%s': %s", key, path, errno_msg(errno));
                goto bad;
            }
            have = want;
        }
        size_t need = 0;
        int rc = npy_parse_header(buf, have, size, info, &need, err, sizeof err);
        if (rc == 0) break;
        if (rc < 0 || need <= have) {
            if (rc > 0) snprintf(err, sizeof err, "npy: internal error in header reading");
            fail(j, "read_input", "input '%s': bad npy file '%s': %s", key, path, err);
            goto bad;
        }
        cap = need;
    }
    free(buf);
    if (fseeko(f, (off_t)info->data_offset, SEEK_SET) != 0) {
        fail(j, "read_input", "input '%s': cannot seek in '%s': %s", key, path, strerror(errno));
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
static int check_shape(Job *j, const Port *p, const char *path, const int64_t *shape, int ndim) {
    int gnd = TF_GraphGetTensorNumDims(j->graph, p->port, j->st);
    if (TF_GetCode(j->st) != TF_OK) {
        fail(j, "read_input", "input '%s': cannot get the graph shape of '%s': %s", p->pt->key, p->name,
             tf_msg(j->st));
        return -1;
    }
    if (gnd < 0) return 0; /* unknown rank */
    int64_t gdims[NPY_MAX_DIMS];
    int ok = gnd == ndim;
    if (gnd <= NPY_MAX_DIMS) {
        TF_GraphGetTensorShape(j->graph, p->port, gdims, gnd, j->st);
        if (TF_GetCode(j->st) != TF_OK) {
            fail(j, "read_input", "input '%s': cannot get the graph shape of '%s': %s", p->pt->key, p->name,
                 tf_msg(j->st));
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
    fail(j, "read_input", "input '%s': file has shape %s, graph expects %s (%s)", p->pt->key,
         fs.failed ? "?" : fs.data, gs.failed ? "?" : gs.data, path);
    sb_free(&fs);
    sb_free(&gs);
    return -1;
}

static int read_numeric_input(Job *j, Port *p, TF_Tensor **out) {
    const char *key = p->pt->key, *path = p->pt->file;
    NpyInfo info;
    FILE *f = open_npy(j, p, path, &info);
    if (!f) return -1;
    int rc = -1;
    if ((int)p->gdtype != info.dtype->code) {
        fail(j, "read_input", "input '%s': file has %s, graph expects %s (%s)", key, info.dtype->name,
             tf_dtype_name(p->gdtype), path);
        goto done;
    }
    if (check_shape(j, p, path, info.shape, info.ndim)) goto done;
    if (info.data_len > SIZE_MAX) {
        fail(j, "read_input", "input '%s': '%s' is too large", key, path);
        goto done;
    }
    TF_Tensor *t = TF_AllocateTensor(p->gdtype, info.shape, info.ndim, (size_t)info.data_len);
    if (!t) {
        fail(j, "read_input", "input '%s': cannot allocate a %llu-byte tensor", key,
             (unsigned long long)info.data_len);
        goto done;
    }
    unsigned char *data = TF_TensorData(t);
    errno = 0;
    if (info.data_len && fread(data, 1, (size_t)info.data_len, f) != info.data_len) {
        fail(j, "read_input", "input '%s': cannot read '%s': %s", key, path, errno_msg(errno));
        TF_DeleteTensor(t);
        goto done;
    }
    if (p->gdtype == TF_BOOL) {
        /* Anything but 0/1 is not a bool TensorFlow can rely on. */
        for (uint64_t i = 0; i < info.data_len; i++)
            if (data[i] > 1) {
                fail(j, "read_input", "input '%s': bool element %llu of '%s' is %u, not 0 or 1", key,
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

static int read_string_input(Job *j, Port *p, TF_Tensor **out) {
    const char *key = p->pt->key, *path = p->pt->file;
    NpyInfo info;
    FILE *f = open_npy(j, p, path, &info);
    if (!f) return -1;
    int64_t *lens = NULL;
    char *bytes = NULL;
    char *bpath = NULL;
    FILE *bf = NULL;
    int rc = -1;
    if (info.dtype->code != TF_INT64) {
        fail(j, "read_input", "input '%s': string lengths file '%s' has %s, expected int64", key, path,
             info.dtype->name);
        goto done;
    }
    if (check_shape(j, p, path, info.shape, info.ndim)) goto done;
    uint64_t n = info.n_elems;
    if (n > SIZE_MAX / sizeof(TF_TString)) {
        fail(j, "read_input", "input '%s': '%s' has too many elements", key, path);
        goto done;
    }
    lens = malloc(n ? (size_t)n * sizeof *lens : 1);
    if (!lens) {
        fail(j, "read_input", "input '%s': out of memory for %llu string lengths", key, (unsigned long long)n);
        goto done;
    }
    errno = 0;
    if (n && fread(lens, sizeof *lens, (size_t)n, f) != n) {
        fail(j, "read_input", "input '%s': cannot read '%s': %s", key, path, errno_msg(errno));
        goto done;
    }
    uint64_t total = 0;
    for (uint64_t i = 0; i < n; i++) {
        /* The file is little-endian; so is every host TensorFlow's wheel supports. */
        if (lens[i] < 0) {
            fail(j, "read_input", "input '%s': string length %lld of element %llu in '%s' is negative", key,
                 (long long)lens[i], (unsigned long long)i, path);
            goto done;
        }
        if ((uint64_t)lens[i] > SIZE_MAX - total) {
            fail(j, "read_input", "input '%s': string lengths in '%s' overflow", key, path);
            goto done;
        }
        total += (uint64_t)lens[i];
    }
    size_t plen = strlen(path);
    bpath = malloc(plen + 7);
    if (!bpath) {
        fail(j, "read_input", "input '%s': out of memory", key);
        goto done;
    }
    memcpy(bpath, path, plen);
    memcpy(bpath + plen, ".bytes", 7);
    bf = fopen(bpath, "rb");
    if (!bf) {
        fail(j, "read_input", "input '%s': cannot open '%s': %s", key, bpath, strerror(errno));
        goto done;
    }
    struct stat sbuf;
    if (fstat(fileno(bf), &sbuf) != 0 || !S_ISREG(sbuf.st_mode)) {
        fail(j, "read_input", "input '%s': '%s' is not a regular file", key, bpath);
        goto done;
    }
    if ((uint64_t)sbuf.st_size != total) {
        fail(j, "read_input", "input '%s': '%s' has %lld bytes, but the lengths in '%s' add up to %llu", key, bpath,
             (long long)sbuf.st_size, path, (unsigned long long)total);
        goto done;
    }
    bytes = malloc(total ? (size_t)total : 1);
    if (!bytes) {
        fail(j, "read_input", "input '%s': out of memory for %llu string bytes", key, (unsigned long long)total);
        goto done;
    }
    errno = 0;
    if (total && fread(bytes, 1, (size_t)total, bf) != total) {
        fail(j, "read_input", "input '%s': cannot read '%s': %s", key, bpath, errno_msg(errno));
        goto done;
    }
    TF_Tensor *t = TF_AllocateTensor(TF_STRING, info.shape, info.ndim, (size_t)n * sizeof(TF_TString));
    if (!t) {
        fail(j, "read_input", "input '%s': cannot allocate a string tensor of %llu elements", key,
             (unsigned long long)n);
        goto done;
    }
    /* Initialise every element before use. cleanup() deallocates them before
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

/* ---- running and writing outputs ----------------------------------------- */

static void release_outputs(Job *j) {
    for (size_t i = 0; i < j->job->n_outputs; i++)
        if (j->out_vals[i]) {
            TF_DeleteTensor(j->out_vals[i]);
            j->out_vals[i] = NULL;
        }
}

/* Callers release the previous outputs first, outside the timed region. */
static int session_run(Job *j, const char *which) {
    size_t ni = j->job->n_inputs, no = j->job->n_outputs;
    TF_SessionRun(j->sess, NULL, j->in_ports, j->in_vals, (int)ni, j->out_ports, j->out_vals, (int)no, NULL, 0,
                  NULL, j->st);
    if (TF_GetCode(j->st) != TF_OK) {
        fail(j, "run", "%s failed: %s", which, tf_msg(j->st));
        return -1;
    }
    return 0;
}

static int write_all(FILE *f, const void *data, size_t n) { return n == 0 || fwrite(data, 1, n, f) == n ? 0 : -1; }

/* Writes one output of the first run as npy (or the two-file string encoding). */
static int write_output(Job *j, size_t idx) {
    const Port *p = &j->out[idx];
    const char *key = p->pt->key, *path = p->pt->file;
    TF_Tensor *t = j->out_vals[idx];
    if (!t) {
        fail(j, "write_output", "output '%s': TensorFlow returned no tensor for '%s'", key, p->name);
        return -1;
    }
    TF_DataType dt = TF_TensorType(t);
    const TfiDtype *d = tfi_dtype_by_code((int)dt);
    if (!d) {
        const char *nm = tf_dtype_name(dt);
        fail(j, "write_output", "output '%s': fetched dtype %s is not supported by the contract", key,
             nm ? nm : "(unknown)");
        return -1;
    }
    int nd = TF_NumDims(t);
    if (nd < 0 || nd > NPY_MAX_DIMS) {
        fail(j, "write_output", "output '%s': rank %d is not supported", key, nd);
        return -1;
    }
    int64_t shape[NPY_MAX_DIMS];
    for (int i = 0; i < nd; i++) shape[i] = TF_Dim(t, i);
    size_t n = (size_t)TF_TensorElementCount(t);
    size_t bytes = TF_TensorByteSize(t);
    size_t expect = d->itemsize ? d->itemsize : sizeof(TF_TString);
    if (n > SIZE_MAX / expect || bytes != n * expect) {
        fail(j, "write_output", "output '%s': tensor holds %zu bytes for %zu %s elements", key, bytes, n, d->name);
        return -1;
    }
    const void *data = TF_TensorData(t);

    StrBuf hdr;
    sb_init(&hdr);
    npy_write_header(&hdr, d->itemsize ? d->descr : "<i8", shape, nd);
    FILE *f = NULL, *bf = NULL;
    char *bpath = NULL;
    int rc = -1;
    if (hdr.failed) {
        fail(j, "write_output", "output '%s': out of memory", key);
        goto done;
    }
    f = fopen(path, "wb");
    if (!f) {
        fail(j, "write_output", "output '%s': cannot create '%s': %s", key, path, strerror(errno));
        goto done;
    }
    errno = 0;
    if (write_all(f, hdr.data, hdr.len)) goto werr;
    if (d->itemsize) {
        if (write_all(f, data, bytes)) goto werr;
    } else {
        const TF_TString *s = data;
        size_t plen = strlen(path);
        bpath = malloc(plen + 7);
        if (!bpath) {
            fail(j, "write_output", "output '%s': out of memory", key);
            goto done;
        }
        memcpy(bpath, path, plen);
        memcpy(bpath + plen, ".bytes", 7);
        for (size_t i = 0; i < n; i++) {
            int64_t len = (int64_t)TF_StringGetSize(&s[i]);
            if (write_all(f, &len, sizeof len)) goto werr;
        }
        bf = fopen(bpath, "wb");
        if (!bf) {
            fail(j, "write_output", "output '%s': cannot create '%s': %s", key, bpath, strerror(errno));
            goto done;
        }
        for (size_t i = 0; i < n; i++) {
            if (write_all(bf, TF_StringGetDataPointer(&s[i]), TF_StringGetSize(&s[i]))) {
                fail(j, "write_output", "output '%s': cannot write '%s': %s", key, bpath, errno_msg(errno));
                goto done;
            }
        }
        FILE *tmp = bf;
        bf = NULL;
        if (fclose(tmp) != 0) {
            fail(j, "write_output", "output '%s': cannot write '%s': %s", key, bpath, errno_msg(errno));
            goto done;
        }
    }
    FILE *tmp = f;
    f = NULL;
    if (fclose(tmp) != 0) goto werr;

    StrBuf *o = &j->outputs_json;
    if (idx) sb_puts(o, ", ");
    sb_puts(o, "{\"key\": ");
    sb_json_cstr(o, key);
    sb_puts(o, ", \"tensor\": ");
    /* The normalised name actually fetched: "op:index". */
    StrBuf nm;
    sb_init(&nm);
    sb_printf(&nm, "%s:%d", p->op_name, p->port.index);
    sb_json_str(o, nm.data ? nm.data : "", nm.len);
    sb_free(&nm);
    sb_printf(o, ", \"dtype\": \"%s\", \"shape\": ", d->name);
    npy_format_shape(o, shape, nd);
    sb_puts(o, ", \"file\": ");
    sb_json_cstr(o, path);
    sb_puts(o, "}");
    rc = 0;
    goto done;
werr:
    fail(j, "write_output", "output '%s': cannot write '%s': %s", key, path, errno_msg(errno));
done:
    if (f) fclose(f);
    if (bf) fclose(bf);
    if (rc != 0) {
        remove(path); /* no half-written output left behind to be compared */
        if (bpath) remove(bpath);
    }
    free(bpath);
    sb_free(&hdr);
    return rc;
}

/* ---- job ----------------------------------------------------------------- */

static void cleanup(Job *j) {
    const PlanJob *job = j->job;
    if (j->out_vals)
        for (size_t i = 0; i < job->n_outputs; i++)
            if (j->out_vals[i]) TF_DeleteTensor(j->out_vals[i]);
    if (j->in_vals)
        for (size_t i = 0; i < job->n_inputs; i++)
            if (j->in_vals[i]) {
                if (j->in[i].owns_tstrings) free_tstrings(j->in_vals[i]);
                TF_DeleteTensor(j->in_vals[i]);
            }
    if (j->sess) {
        TF_Status *st = TF_NewStatus();
        TF_CloseSession(j->sess, st);
        if (TF_GetCode(st) != TF_OK) fail(j, "run", "closing the session failed: %s", tf_msg(st));
        TF_DeleteSession(j->sess, st);
        if (TF_GetCode(st) != TF_OK) fail(j, "run", "deleting the session failed: %s", tf_msg(st));
        TF_DeleteStatus(st);
    }
    if (j->graph) TF_DeleteGraph(j->graph);
    if (j->opts) TF_DeleteSessionOptions(j->opts);
    if (j->st) TF_DeleteStatus(j->st);
    if (j->in)
        for (size_t i = 0; i < job->n_inputs; i++) free(j->in[i].op_name);
    if (j->out)
        for (size_t i = 0; i < job->n_outputs; i++) free(j->out[i].op_name);
    free(j->in);
    free(j->out);
    free(j->in_ports);
    free(j->out_ports);
    free(j->in_vals);
    free(j->out_vals);
}

static void execute(Job *j, const Plan *plan) {
    const PlanJob *job = j->job;
    size_t ni = job->n_inputs, no = job->n_outputs;
    if (ni > INT_MAX || no > INT_MAX) {
        fail(j, "plan", "too many inputs or outputs");
        return;
    }
    /* calloc(0) may return NULL; allocate at least one slot. */
    j->in = calloc(ni + 1, sizeof *j->in);
    j->out = calloc(no + 1, sizeof *j->out);
    j->in_ports = calloc(ni + 1, sizeof *j->in_ports);
    j->out_ports = calloc(no + 1, sizeof *j->out_ports);
    j->in_vals = calloc(ni + 1, sizeof *j->in_vals);
    j->out_vals = calloc(no + 1, sizeof *j->out_vals);
    j->steady_cap = job->repeat < 65536 ? (size_t)job->repeat : 65536;
    j->steady = malloc(j->steady_cap * sizeof *j->steady);
    j->st = TF_NewStatus();
    if (!j->in || !j->out || !j->in_ports || !j->out_ports || !j->in_vals || !j->out_vals || !j->steady) {
        fail(j, "load", "out of memory");
        return;
    }

    double t0 = now_s();
    if (load_model(j, plan)) return;
    j->load_s = now_s() - t0;

    for (size_t i = 0; i < ni; i++) {
        j->in[i].pt = &job->inputs[i];
        j->in[i].what = "input";
        if (resolve_port(j, &j->in[i])) return;
        j->in_ports[i] = j->in[i].port;
    }
    for (size_t i = 0; i < no; i++) {
        j->out[i].pt = &job->outputs[i];
        j->out[i].what = "output";
        if (resolve_port(j, &j->out[i])) return;
        j->out_ports[i] = j->out[i].port;
    }

    for (size_t i = 0; i < ni; i++) {
        Port *p = &j->in[i];
        int rc = p->gdtype == TF_STRING ? read_string_input(j, p, &j->in_vals[i])
                                        : read_numeric_input(j, p, &j->in_vals[i]);
        if (rc) return;
    }

    t0 = now_s();
    if (session_run(j, "first run")) return;
    j->first_run_s = now_s() - t0;

    for (size_t i = 0; i < no; i++)
        if (write_output(j, i)) return;

    char which[64];
    for (uint64_t i = 0; i < job->warmup; i++) {
        snprintf(which, sizeof which, "warm-up run %llu", (unsigned long long)i + 1);
        release_outputs(j);
        if (session_run(j, which)) return;
    }
    for (uint64_t i = 0; i < job->repeat; i++) {
        snprintf(which, sizeof which, "timed run %llu", (unsigned long long)i + 1);
        release_outputs(j);
        t0 = now_s();
        if (session_run(j, which)) return;
        double elapsed = now_s() - t0;
        if (i == j->steady_cap) {
            size_t cap = j->steady_cap * 2;
            double *grown = cap > SIZE_MAX / sizeof *grown ? NULL : realloc(j->steady, cap * sizeof *grown);
            if (!grown) {
                fail(j, "run", "out of memory for the timings of %llu runs (repeat)", (unsigned long long)job->repeat);
                return;
            }
            j->steady = grown;
            j->steady_cap = cap;
        }
        j->steady[i] = elapsed;
    }
}

int run_job(const Plan *plan, const PlanJob *job, StrBuf *rec) {
    Job j;
    memset(&j, 0, sizeof j);
    j.job = job;
    sb_init(&j.err);
    sb_init(&j.outputs_json);
    if (job->error)
        fail(&j, "plan", "%s", job->error);
    else {
        execute(&j, plan);
        cleanup(&j);
    }

    sb_puts(rec, "{\"record\": \"job\", \"id\": ");
    sb_json_cstr(rec, job->id);
    if (j.stage) {
        sb_printf(rec, ", \"status\": \"error\", \"stage\": \"%s\", \"error\": ", j.stage);
        if (j.err.failed || !j.err.data)
            sb_json_cstr(rec, "out of memory while formatting the error message");
        else
            sb_json_str(rec, j.err.data, j.err.len);
    } else {
        sb_puts(rec, ", \"status\": \"ok\", \"load_s\": ");
        sb_json_double(rec, j.load_s);
        sb_puts(rec, ", \"first_run_s\": ");
        sb_json_double(rec, j.first_run_s);
        sb_puts(rec, ", \"steady_s\": [");
        for (uint64_t i = 0; i < job->repeat; i++) {
            if (i) sb_puts(rec, ", ");
            sb_json_double(rec, j.steady[i]);
        }
        sb_puts(rec, "], \"outputs\": [");
        sb_append(rec, j.outputs_json.data ? j.outputs_json.data : "", j.outputs_json.len);
        if (j.outputs_json.failed) rec->failed = 1;
        sb_puts(rec, "]}");
    }
    if (j.stage) sb_puts(rec, "}");
    int failed = j.stage != NULL;
    free(j.steady);
    sb_free(&j.err);
    sb_free(&j.outputs_json);
    return failed;
}
