/* libFuzzer target: npy_parse and npy_parse_header (the incremental form open_npy uses).
 * Besides "no crash, no sanitizer report" it checks the parser's promises on every input
 * it accepts, so a silently wrong header is a finding too. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "npy.h"

#define CHECK(cond) \
    do {            \
        if (!(cond)) abort(); \
    } while (0)

/* What every accepted header must satisfy. */
static void check_info(const NpyInfo *info, uint64_t file_size) {
    CHECK(info->major >= 1 && info->major <= 3);
    CHECK(info->dtype != NULL && info->dtype->itemsize > 0);
    CHECK(info->ndim >= 0 && info->ndim <= NPY_MAX_DIMS);
    uint64_t n = 1;
    for (int i = 0; i < info->ndim; i++) {
        CHECK(info->shape[i] >= 0);
        n *= (uint64_t)info->shape[i]; /* no overflow: the parser bounded the product */
    }
    CHECK(n == info->n_elems);
    CHECK(info->data_len == n * info->dtype->itemsize);
    CHECK(info->data_offset <= file_size && info->data_offset + info->data_len == file_size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[256];
    NpyInfo whole;
    int rc = npy_parse(data, size, &whole, err, sizeof err);
    CHECK(rc == 0 || rc == -1);
    if (rc == 0) check_info(&whole, size);
    else CHECK(memchr(err, '\0', sizeof err) && err[0] != '\0'); /* one message, always */

    /* Header reading as inputs.c does it: grow the prefix until the parser has enough. */
    size_t have = size < NPY_MIN_PREAMBLE ? size : NPY_MIN_PREAMBLE;
    for (;;) {
        NpyInfo info;
        size_t need = 0;
        int r = npy_parse_header(data, have, size, &info, &need, err, sizeof err);
        if (r == 1) {
            CHECK(need > have && need <= size);
            have = need;
            continue;
        }
        CHECK(r == rc); /* same verdict as the whole-buffer parse */
        if (r == 0) {
            check_info(&info, size);
            CHECK(info.data_offset == whole.data_offset && info.n_elems == whole.n_elems);
        }
        break;
    }

    /* Round trip: the header we write for an accepted shape/dtype parses back to it. */
    if (rc == 0) {
        StrBuf sb;
        sb_init(&sb);
        npy_write_header(&sb, whole.dtype->descr, whole.shape, whole.ndim);
        CHECK(!sb.failed);
        NpyInfo back;
        size_t need = 0;
        int r = npy_parse_header((const unsigned char *)sb.data, sb.len, sb.len + whole.data_len, &back, &need,
                                 err, sizeof err);
        CHECK(r == 0 && back.dtype == whole.dtype && back.ndim == whole.ndim);
        CHECK(memcmp(back.shape, whole.shape, sizeof(int64_t) * (size_t)whole.ndim) == 0);
        sb_free(&sb);
    }
    return 0;
}
