/* The contract's dtype table (codes equal TF_DataType). */
#include "dtypes.h"

#include <string.h>

static const TfiDtype kDtypes[] = {
    {TFI_HALF, "float16", "<f2", 2},
    {TFI_FLOAT, "float32", "<f4", 4},
    {TFI_DOUBLE, "float64", "<f8", 8},
    {TFI_INT8, "int8", "|i1", 1},
    {TFI_INT16, "int16", "<i2", 2},
    {TFI_INT32, "int32", "<i4", 4},
    {TFI_INT64, "int64", "<i8", 8},
    {TFI_UINT8, "uint8", "|u1", 1},
    {TFI_UINT16, "uint16", "<u2", 2},
    {TFI_UINT32, "uint32", "<u4", 4},
    {TFI_UINT64, "uint64", "<u8", 8},
    {TFI_BOOL, "bool", "|b1", 1},
    {TFI_COMPLEX64, "complex64", "<c8", 8},
    {TFI_COMPLEX128, "complex128", "<c16", 16},
    {TFI_STRING, "string", NULL, 0},
};

const TfiDtype *tfi_dtype_by_code(int code) {
    for (size_t i = 0; i < sizeof kDtypes / sizeof kDtypes[0]; i++)
        if (kDtypes[i].code == code) return &kDtypes[i];
    return NULL;
}

const TfiDtype *tfi_dtype_by_descr(const char *descr, size_t len) {
    for (size_t i = 0; i < sizeof kDtypes / sizeof kDtypes[0]; i++) {
        const char *d = kDtypes[i].descr;
        if (d && strlen(d) == len && memcmp(d, descr, len) == 0) return &kDtypes[i];
    }
    return NULL;
}
