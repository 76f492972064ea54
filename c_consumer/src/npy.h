/* .npy reading (header only; the data is read straight into the tensor) and
 * header writing. Pure functions over byte buffers: no I/O, no globals. */
#ifndef TFI_NPY_H
#define TFI_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "dtypes.h"
#include "strbuf.h"

#define NPY_MAX_DIMS 64 /* TensorFlow allows more, but no test model needs them */
#define NPY_MIN_PREAMBLE 12 /* enough bytes to know the header length for any version */
#define NPY_MAX_HEADER_LEN 65536u /* numpy's reader refuses > 10000 by default; 64 dims fit easily */

typedef struct {
    int major;
    const TfiDtype *dtype;
    int ndim;
    int64_t shape[NPY_MAX_DIMS];
    uint64_t n_elems;
    uint64_t data_offset; /* first data byte in the file */
    uint64_t data_len;    /* n_elems * itemsize == file_size - data_offset */
} NpyInfo;

/* Parses the header of a .npy file of file_size bytes whose first buflen bytes
 * are in buf. Returns 0 on success, -1 on error (message in err), or 1 when buf
 * is too short, with *need set to the number of leading bytes required. */
int npy_parse_header(const unsigned char *buf, size_t buflen, uint64_t file_size, NpyInfo *info, size_t *need,
                     char *err, size_t errlen);

/* The same for a whole file held in memory (data at buf + info->data_offset). */
int npy_parse(const unsigned char *buf, size_t len, NpyInfo *info, char *err, size_t errlen);

/* Appends a complete .npy header (magic .. newline) for a C-order array,
 * padded so the data starts on a 64-byte boundary; version 1.0 unless the
 * header needs more than 65535 bytes (then 2.0). */
void npy_write_header(StrBuf *sb, const char *descr, const int64_t *shape, int ndim);

/* "[2, 3]" style shape text for messages and JSON. */
void npy_format_shape(StrBuf *sb, const int64_t *shape, int ndim);

#endif
