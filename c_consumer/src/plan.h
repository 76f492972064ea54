/* Plan file parser (consumer contract v1). Pure: bytes in, Plan or error text
 * out; no I/O, no globals, no exit(), so it can be fuzzed directly. */
#ifndef TFI_PLAN_H
#define TFI_PLAN_H

#include <stddef.h>
#include <stdint.h>

typedef enum { PLAN_FORMAT_NONE = 0, PLAN_FORMAT_FROZEN, PLAN_FORMAT_SAVED_MODEL } PlanFormat;

typedef struct {
    char *key;
    char *tensor; /* as written; "-" means "not given" */
    char *file;
} PlanTensor;

typedef struct {
    char *id;
    size_t line; /* line number of the `job` record */
    char *model;
    PlanFormat format;
    char *tags;      /* NULL: default "serve" */
    char *signature; /* NULL: default "serving_default" */
    PlanTensor *inputs;
    size_t n_inputs;
    PlanTensor *outputs;
    size_t n_outputs;
    uint64_t warmup;
    uint64_t repeat;
    int seen_warmup, seen_repeat; /* to refuse repeated records */
    /* Set when the job's records are well-formed but don't make a valid job
     * (missing model/format/output, a record repeated, tags on a frozen graph,
     * ...): that job alone fails with stage "plan". NULL for a valid job. */
    char *error;
} PlanJob;

typedef struct {
    int has_threads;
    int32_t intra_threads;
    int32_t inter_threads;
    PlanJob *jobs;
    size_t n_jobs;
} Plan;

/* Parses a whole plan. Returns 0 and sets *out (free with plan_free), or -1
 * with a one-line message in err: the plan is invalid (exit status 2), e.g. a
 * bad header, unknown record, wrong field count, empty field, malformed
 * number, repeat 0, bad format value, duplicate job ID, unclosed job. */
int plan_parse(const char *data, size_t len, Plan **out, char *err, size_t errlen);
void plan_free(Plan *plan);

#endif
