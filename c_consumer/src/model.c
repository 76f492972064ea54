/* Loading the model (frozen GraphDef or SavedModel) into a session; resolving tensor names to ports. */
#define _POSIX_C_SOURCE 200809L

#include "model.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dtypes.h"

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

const char *tf_dtype_name(TF_DataType dt) {
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

/* TensorFlow's message, never empty. */
const char *tf_msg(TF_Status *st) {
    const char *m = TF_Message(st);
    return (m && *m) ? m : "(TensorFlow gave no message)";
}

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

int load_model(Model *m, const Plan *plan, const PlanJob *job, JobRecord *rec) {
    m->opts = TF_NewSessionOptions();
    m->graph = TF_NewGraph();
    if (plan->has_threads) {
        unsigned char cfg[12];
        size_t n = tfi_thread_config(plan->intra_threads, plan->inter_threads, cfg);
        if (n) {
            TF_SetConfig(m->opts, cfg, n, m->st);
            if (TF_GetCode(m->st) != TF_OK) {
                set_err(rec, "load", "cannot apply threads %d,%d to the session options: %s", plan->intra_threads,
                        plan->inter_threads, tf_msg(m->st));
                return -1;
            }
        }
    }
    if (job->format == PLAN_FORMAT_FROZEN) {
        char *data;
        size_t len;
        int e = 0;
        if (read_whole_file(job->model, &data, &len, &e)) {
            set_err(rec, "load", "cannot read frozen graph '%s': %s", job->model,
                    e == EFBIG ? "larger than 2 GiB, the protobuf limit for a GraphDef" : strerror(e));
            return -1;
        }
        TF_Buffer *buf = TF_NewBufferFromString(data, len);
        free(data);
        TF_ImportGraphDefOptions *io = TF_NewImportGraphDefOptions();
        TF_GraphImportGraphDef(m->graph, buf, io, m->st);
        TF_DeleteImportGraphDefOptions(io);
        TF_DeleteBuffer(buf);
        if (TF_GetCode(m->st) != TF_OK) {
            set_err(rec, "load", "cannot import frozen graph '%s': %s", job->model, tf_msg(m->st));
            return -1;
        }
        m->sess = TF_NewSession(m->graph, m->opts, m->st);
        if (TF_GetCode(m->st) != TF_OK) {
            m->sess = NULL;
            set_err(rec, "load", "cannot create a session for '%s': %s", job->model, tf_msg(m->st));
            return -1;
        }
        return 0;
    }
    /* SavedModel: split the comma-separated tag set (the plan refused empty tags). */
    char *tags = strdup(job->tags ? job->tags : "serve");
    if (!tags) {
        set_err(rec, "load", "out of memory");
        return -1;
    }
    int ntags = 1;
    for (char *p = tags; *p; p++)
        if (*p == ',') ntags++;
    const char **tagv = malloc((size_t)ntags * sizeof *tagv);
    if (!tagv) {
        free(tags);
        set_err(rec, "load", "out of memory");
        return -1;
    }
    int k = 0;
    tagv[k++] = tags;
    for (char *p = tags; *p; p++)
        if (*p == ',') {
            *p = '\0';
            tagv[k++] = p + 1;
        }
    m->sess = TF_LoadSessionFromSavedModel(m->opts, NULL, job->model, tagv, ntags, m->graph, NULL, m->st);
    free(tagv);
    free(tags);
    if (TF_GetCode(m->st) != TF_OK) {
        m->sess = NULL;
        set_err(rec, "load", "cannot load SavedModel '%s' with tags '%s': %s", job->model,
                job->tags ? job->tags : "serve", tf_msg(m->st));
        return -1;
    }
    return 0;
}

/* "op:idx" or "op" (index 0). */
int split_tensor_name(const char *name, char **op, int *index) {
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

int resolve_port(const Model *m, PlanFormat format, Port *p, JobRecord *rec) {
    const PlanTensor *pt = p->pt;
    if (strcmp(pt->tensor, "-") != 0) {
        p->name = pt->tensor;
    } else if (format == PLAN_FORMAT_FROZEN) {
        p->name = pt->key;
    } else {
        set_err(rec, "resolve",
                "%s '%s': the plan gives no TENSOR and the C consumer cannot resolve signature keys itself",
                p->what, pt->key);
        return -1;
    }
    int index;
    if (split_tensor_name(p->name, &p->op_name, &index)) {
        set_err(rec, "resolve", "%s '%s': bad tensor name '%s'", p->what, pt->key, p->name);
        return -1;
    }
    TF_Operation *op = TF_GraphOperationByName(m->graph, p->op_name);
    if (!op) {
        set_err(rec, "resolve", "%s '%s': tensor '%s' not found: the graph has no operation '%s'", p->what, pt->key,
                p->name, p->op_name);
        return -1;
    }
    int nout = TF_OperationNumOutputs(op);
    if (index >= nout) {
        set_err(rec, "resolve", "%s '%s': tensor '%s' not found: operation '%s' has %d output%s", p->what, pt->key,
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
            set_err(rec, "resolve", "%s '%s': tensor '%s' has dtype %s, which the contract does not support", p->what,
                    pt->key, p->name, nm);
        else
            set_err(rec, "resolve", "%s '%s': tensor '%s' has TF_DataType %d, which the contract does not support",
                    p->what, pt->key, p->name, (int)dt);
        return -1;
    }
    return 0;
}

void close_model(Model *m, JobRecord *rec) {
    if (m->sess) {
        TF_Status *st = TF_NewStatus();
        TF_CloseSession(m->sess, st);
        if (TF_GetCode(st) != TF_OK) set_err(rec, "run", "closing the session failed: %s", tf_msg(st));
        TF_DeleteSession(m->sess, st);
        if (TF_GetCode(st) != TF_OK) set_err(rec, "run", "deleting the session failed: %s", tf_msg(st));
        TF_DeleteStatus(st);
    }
    if (m->graph) TF_DeleteGraph(m->graph);
    if (m->opts) TF_DeleteSessionOptions(m->opts);
    if (m->st) TF_DeleteStatus(m->st);
}
