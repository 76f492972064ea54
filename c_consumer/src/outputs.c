/* Writing the fetched TF_Tensors: numeric .npy and the two-file string encoding. */
#define _POSIX_C_SOURCE 200809L

#include "outputs.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtypes.h"
#include "npy.h"
#include "tensorflow/c/tf_tstring.h"

static int write_all(FILE *f, const void *data, size_t n) { return n == 0 || fwrite(data, 1, n, f) == n ? 0 : -1; }

/* Writes one output of the first run as npy (or the two-file string encoding). */
int write_output(const Port *p, TF_Tensor *t, JobRecord *rec) {
    const char *key = p->pt->key, *path = p->pt->file;
    if (!t) {
        set_err(rec, "write_output", "output '%s': TensorFlow returned no tensor for '%s'", key, p->name);
        return -1;
    }
    TF_DataType dt = TF_TensorType(t);
    const TfiDtype *d = tfi_dtype_by_code((int)dt);
    if (!d) {
        const char *nm = tf_dtype_name(dt);
        set_err(rec, "write_output", "output '%s': fetched dtype %s is not supported by the contract", key,
                nm ? nm : "(unknown)");
        return -1;
    }
    int nd = TF_NumDims(t);
    if (nd < 0 || nd > NPY_MAX_DIMS) {
        set_err(rec, "write_output", "output '%s': rank %d is not supported", key, nd);
        return -1;
    }
    int64_t shape[NPY_MAX_DIMS];
    for (int i = 0; i < nd; i++) shape[i] = TF_Dim(t, i);
    size_t n = (size_t)TF_TensorElementCount(t);
    size_t bytes = TF_TensorByteSize(t);
    size_t expect = d->itemsize ? d->itemsize : sizeof(TF_TString);
    if (n > SIZE_MAX / expect || bytes != n * expect) {
        set_err(rec, "write_output", "output '%s': tensor holds %zu bytes for %zu %s elements", key, bytes, n, d->name);
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
        set_err(rec, "write_output", "output '%s': out of memory", key);
        goto done;
    }
    f = fopen(path, "wb");
    if (!f) {
        set_err(rec, "write_output", "output '%s': cannot create '%s': %s", key, path, strerror(errno));
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
            set_err(rec, "write_output", "output '%s': out of memory", key);
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
            set_err(rec, "write_output", "output '%s': cannot create '%s': %s", key, bpath, strerror(errno));
            goto done;
        }
        for (size_t i = 0; i < n; i++) {
            if (write_all(bf, TF_StringGetDataPointer(&s[i]), TF_StringGetSize(&s[i]))) {
                set_err(rec, "write_output", "output '%s': cannot write '%s': %s", key, bpath, errno_msg(errno));
                goto done;
            }
        }
        FILE *tmp = bf;
        bf = NULL;
        if (fclose(tmp) != 0) {
            set_err(rec, "write_output", "output '%s': cannot write '%s': %s", key, bpath, errno_msg(errno));
            goto done;
        }
    }
    FILE *tmp = f;
    f = NULL;
    if (fclose(tmp) != 0) goto werr;

    record_output(rec, key, p->op_name, p->port.index, d->name, shape, nd, path);
    rc = 0;
    goto done;
werr:
    set_err(rec, "write_output", "output '%s': cannot write '%s': %s", key, path, errno_msg(errno));
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

void release_outputs(TF_Tensor **vals, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (vals[i]) {
            TF_DeleteTensor(vals[i]);
            vals[i] = NULL;
        }
}
