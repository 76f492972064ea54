/* Dumping what the linked libtensorflow registers (OpList, KernelList) for `tfinterop inspect`. */
#include "registry.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "tensorflow/c/c_api.h"

/* Writes a TF_Buffer to path (the whole file, or an error line on stderr). */
static int write_buffer(const char *path, const TF_Buffer *buf, const char *what) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "tfinterop-c-consumer: cannot create %s file '%s': %s\n", what, path, strerror(errno));
        return -1;
    }
    int bad = buf->length && fwrite(buf->data, 1, buf->length, f) != buf->length;
    int e = errno;
    if (fclose(f) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    if (bad) fprintf(stderr, "tfinterop-c-consumer: cannot write %s file '%s': %s\n", what, path, strerror(e));
    return bad ? -1 : 0;
}

/* What the linked libtensorflow registers, for `tfinterop inspect`'s kernel check: the
 * serialized OpList (TF_GetAllOpList) and KernelList (TF_GetAllRegisteredKernels) protos. */
int dump_registry(const char *ops_path, const char *kernels_path) {
    int rc = 0;
    if (ops_path) {
        TF_Buffer *ops = TF_GetAllOpList();
        if (!ops) {
            fputs("tfinterop-c-consumer: TF_GetAllOpList returned nothing\n", stderr);
            return -1;
        }
        if (write_buffer(ops_path, ops, "op list")) rc = -1;
        TF_DeleteBuffer(ops);
    }
    if (kernels_path && rc == 0) {
        TF_Status *st = TF_NewStatus();
        TF_Buffer *kernels = TF_GetAllRegisteredKernels(st);
        if (TF_GetCode(st) != TF_OK || !kernels) {
            fprintf(stderr, "tfinterop-c-consumer: TF_GetAllRegisteredKernels: %s\n", TF_Message(st));
            rc = -1;
        } else if (write_buffer(kernels_path, kernels, "kernel list")) {
            rc = -1;
        }
        TF_DeleteBuffer(kernels);
        TF_DeleteStatus(st);
    }
    return rc;
}
