/* Runs one plan job on the TensorFlow C API and renders its JSON record. */
#ifndef TFI_RUNNER_H
#define TFI_RUNNER_H

#include "plan.h"
#include "strbuf.h"

/* Appends the job's result record (one JSON object, no newline) to rec.
 * Returns 0 when the job succeeded, 1 when it failed (the record says why). */
int run_job(const Plan *plan, const PlanJob *job, StrBuf *rec);

/* Serialized ConfigProto with intra (field 2) and inter (field 5) op threads;
 * zero values are left out (TensorFlow's default). Returns the byte count. */
size_t tfi_thread_config(int32_t intra, int32_t inter, unsigned char out[12]);

#endif
