/* The job record: timings, outputs, the first failure (set_err), and its JSON rendering. */
#define _POSIX_C_SOURCE 200809L

#include "record.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "npy.h"

void record_init(JobRecord *r) {
    memset(r, 0, sizeof *r);
    sb_init(&r->err);
    sb_init(&r->outputs_json);
}

void record_free(JobRecord *r) {
    free(r->steady);
    r->steady = NULL;
    sb_free(&r->err);
    sb_free(&r->outputs_json);
}

void set_err(JobRecord *r, const char *stage, const char *fmt, ...) {
       if (r->stage) return; /* keep the first failure */
       r->stage = stage;
    va_list ap;
    va_start(ap, fmt);
    if (sb_vprintf(&r->err, fmt, ap) < 0) sb_puts(&r->err, "(could not format the error message)");
    va_end(ap);
}

const char *errno_msg(int e) { return e ? strerror(e) : "unexpected end of file"; }

double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int record_alloc_steady(JobRecord *r, uint64_t repeat) {
    r->steady_cap = repeat < 65536 ? (size_t)repeat : 65536;
    r->steady = malloc(r->steady_cap * sizeof *r->steady);
    return r->steady ? 0 : -1;
}

int record_steady(JobRecord *r, uint64_t i, double elapsed, uint64_t repeat) {
    if (i == r->steady_cap) {
        size_t cap = r->steady_cap * 2;
        double *grown = cap > SIZE_MAX / sizeof *grown ? NULL : realloc(r->steady, cap * sizeof *grown);
        if (!grown) {
            set_err(r, "run", "out of memory for the timings of %llu runs (repeat)", (unsigned long long)repeat);
            return -1;
        }
        r->steady = grown;
        r->steady_cap = cap;
    }
    r->steady[i] = elapsed;
    return 0;
}

void record_output(JobRecord *r, const char *key, const char *op_name, int index, const char *dtype,
                   const int64_t *shape, int ndim, const char *path) {
    StrBuf *o = &r->outputs_json;
    if (r->n_outputs++) sb_puts(o, ", ");
    sb_puts(o, "{\"key\": ");
    sb_json_cstr(o, key);
    sb_puts(o, ", \"tensor\": ");
    /* The normalised name actually fetched: "op:index". */
    StrBuf nm;
    sb_init(&nm);
    sb_printf(&nm, "%s:%d", op_name, index);
    sb_json_str(o, nm.data ? nm.data : "", nm.len);
    sb_free(&nm);
    sb_printf(o, ", \"dtype\": \"%s\", \"shape\": ", dtype);
    npy_format_shape(o, shape, ndim);
    sb_puts(o, ", \"file\": ");
    sb_json_cstr(o, path);
    sb_puts(o, "}");
}

void record_render(const JobRecord *r, const PlanJob *job, StrBuf *out) {
    sb_puts(out, "{\"record\": \"job\", \"id\": ");
    sb_json_cstr(out, job->id);
    if (r->stage) {
        sb_printf(out, ", \"status\": \"error\", \"stage\": \"%s\", \"error\": ", r->stage);
        if (r->err.failed || !r->err.data)
            sb_json_cstr(out, "out of memory while formatting the error message");
        else
            sb_json_str(out, r->err.data, r->err.len);
        sb_puts(out, "}");
        return;
    }
    sb_puts(out, ", \"status\": \"ok\", \"load_s\": ");
    sb_json_double(out, r->load_s);
    sb_puts(out, ", \"first_run_s\": ");
    sb_json_double(out, r->first_run_s);
    sb_puts(out, ", \"steady_s\": [");
    for (uint64_t i = 0; i < job->repeat; i++) {
        if (i) sb_puts(out, ", ");
        sb_json_double(out, r->steady[i]);
    }
    sb_puts(out, "], \"outputs\": [");
    sb_append(out, r->outputs_json.data ? r->outputs_json.data : "", r->outputs_json.len);
    if (r->outputs_json.failed) out->failed = 1;
    sb_puts(out, "]}");
}
