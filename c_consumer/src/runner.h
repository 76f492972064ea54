/* Runs one plan job on the TensorFlow C API and renders its JSON record. */
#ifndef TFI_RUNNER_H
#define TFI_RUNNER_H

#include "plan.h"
#include "strbuf.h"

/* Appends the job's result record (one JSON object, no newline) to out.
 * Returns 0 when the job succeeded, 1 when it failed (the record says why). */
int run_job(const Plan *plan, const PlanJob *job, StrBuf *out);

#endif
