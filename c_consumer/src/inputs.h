/* Reading the job's input files into TF_Tensors: numeric .npy and the two-file string encoding. */
#ifndef TFI_INPUTS_H
#define TFI_INPUTS_H

#include <stddef.h>

#include "model.h"
#include "record.h"
#include "tensorflow/c/c_api.h"

/* Reads input p (resolved) from p->pt->file into a new tensor of the graph's dtype, after
 * checking the file's dtype and shape against the graph. Returns -1 after
 * set_err(rec, "read_input", ...). */
int read_input(const Model *m, Port *p, TF_Tensor **out, JobRecord *rec);

/* Deletes the n input tensors (NULL ones skipped), deallocating the strings we initialised. */
void free_inputs(const Port *ports, TF_Tensor **vals, size_t n);

#endif
