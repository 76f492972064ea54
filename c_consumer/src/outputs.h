/* Writing the fetched TF_Tensors: numeric .npy and the two-file string encoding. */
#ifndef TFI_OUTPUTS_H
#define TFI_OUTPUTS_H

#include <stddef.h>

#include "model.h"
#include "record.h"
#include "tensorflow/c/c_api.h"

/* Writes output p's tensor t (NULL: TensorFlow returned none) to p->pt->file, and on success
 * adds it to rec's outputs. Returns -1 after set_err(rec, "write_output", ...), leaving no
 * half-written file behind. */
int write_output(const Port *p, TF_Tensor *t, JobRecord *rec);

/* Deletes the n tensors and sets them to NULL (NULL ones skipped). */
void release_outputs(TF_Tensor **vals, size_t n);

#endif
