/* The contract's dtype table. Pure data, no TensorFlow headers, so the parsers
 * that use it can be built on their own (fuzzing). The numeric codes equal
 * TensorFlow's TF_DataType values; model.c checks that at compile time. */
#ifndef TFI_DTYPES_H
#define TFI_DTYPES_H

#include <stddef.h>

enum {
    TFI_FLOAT = 1, TFI_DOUBLE = 2, TFI_INT32 = 3, TFI_UINT8 = 4,
    TFI_INT16 = 5, TFI_INT8 = 6, TFI_STRING = 7, TFI_COMPLEX64 = 8,
    TFI_INT64 = 9, TFI_BOOL = 10, TFI_UINT16 = 17, TFI_COMPLEX128 = 18,
    TFI_HALF = 19, TFI_UINT32 = 22, TFI_UINT64 = 23
};

typedef struct {
    int code;          /* TF_DataType value */
    const char *name;  /* contract name, e.g. "float32" */
    const char *descr; /* npy descr, NULL for string */
    size_t itemsize;   /* bytes per element in npy and in the TF buffer; 0 for string */
} TfiDtype;

/* NULL when the dtype is not in the contract table. */
const TfiDtype *tfi_dtype_by_code(int code);
const TfiDtype *tfi_dtype_by_descr(const char *descr, size_t len);

#endif
