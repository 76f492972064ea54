/* Loading the model (frozen GraphDef or SavedModel) into a session; resolving tensor names to ports. */
#ifndef TFI_MODEL_H
#define TFI_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "plan.h"
#include "record.h"
#include "tensorflow/c/c_api.h"

typedef struct {
    TF_Status *st; /* created by the caller, deleted by close_model */
    TF_Graph *graph;
    TF_SessionOptions *opts;
    TF_Session *sess;
} Model;

/* One input or output of the job, once resolved. */
typedef struct {
    const PlanTensor *pt;
    const char *what;     /* "input" / "output" */
    const char *name;     /* tensor name used: TENSOR, or KEY for frozen when TENSOR is "-" */
    char *op_name;
    TF_Output port;
    TF_DataType gdtype;   /* graph dtype, reference types mapped to their base */
    int owns_tstrings;    /* input tensor whose TF_TStrings we initialised */
} Port;

/* Serialized ConfigProto with intra (field 2) and inter (field 5) op threads;
 * zero values are left out (TensorFlow's default). Returns the byte count. */
size_t tfi_thread_config(int32_t intra, int32_t inter, unsigned char out[12]);

/* Creates m's options, graph and session for the job's model (m->st must exist).
 * Returns -1 after set_err(rec, "load", ...). */
int load_model(Model *m, const Plan *plan, const PlanJob *job, JobRecord *rec);

/* "op:idx" or "op" (index 0) -> malloc'd op name and index. Returns -1 on a bad index or
 * out of memory. */
int split_tensor_name(const char *name, char **op, int *index);

/* Fills p's name, op_name, port and gdtype from p->pt. Returns -1 after
 * set_err(rec, "resolve", ...). */
int resolve_port(const Model *m, PlanFormat format, Port *p, JobRecord *rec);

/* Closes and deletes the session, then the graph, options and status (failures to close
 * are the job's "run" failure). */
void close_model(Model *m, JobRecord *rec);

/* TensorFlow's message, never empty. */
const char *tf_msg(TF_Status *st);

/* A name for every TF dtype, so messages about unsupported ones are readable; NULL if unknown. */
const char *tf_dtype_name(TF_DataType dt);

#endif
