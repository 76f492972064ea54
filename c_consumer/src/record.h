/* The job record: timings, outputs, the first failure (set_err), rendered as one JSON object. */
#ifndef TFI_RECORD_H
#define TFI_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "plan.h"
#include "strbuf.h"

typedef struct {
    const char *stage; /* the failed stage ("plan", "load", ...); NULL while the job is ok */
    StrBuf err;        /* the failure's message */
    double load_s, first_run_s;
    double *steady;
    size_t steady_cap; /* grows with the runs: `repeat` (up to 2^32-1) is user data */
    StrBuf outputs_json;
    size_t n_outputs;
} JobRecord;

void record_init(JobRecord *r);
void record_free(JobRecord *r);

/* Records the job's failure at stage, unless it already failed: the first failure is kept.
 * Every failure of a job goes through here. */
void set_err(JobRecord *r, const char *stage, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* strerror(e), or "unexpected end of file" for a short read that left errno 0. */
const char *errno_msg(int e);

/* Seconds on the monotonic clock. */
double now_s(void);

/* Allocates the steady-run timings for up to `repeat` runs (at first 65536 at most).
 * Returns -1 when out of memory (the caller reports it). */
int record_alloc_steady(JobRecord *r, uint64_t repeat);
/* Stores timed run i (0-based, in order), growing the array. Returns -1 after set_err. */
int record_steady(JobRecord *r, uint64_t i, double elapsed, uint64_t repeat);

/* Appends an output written to path: the fetched "op:index", its dtype name and shape. */
void record_output(JobRecord *r, const char *key, const char *op_name, int index, const char *dtype,
                   const int64_t *shape, int ndim, const char *path);

/* Appends the job's result record (one JSON object, no newline) to out. */
void record_render(const JobRecord *r, const PlanJob *job, StrBuf *out);

#endif
