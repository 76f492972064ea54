/* The job driver: load, resolve, read inputs, run (first, warm-up, timed), write outputs, clean up. */
#define _POSIX_C_SOURCE 200809L

#include "runner.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inputs.h"
#include "model.h"
#include "outputs.h"
#include "record.h"

typedef struct {
    const PlanJob *job;
    Model m;
    Port *in;
    Port *out;
    TF_Output *in_ports;
    TF_Output *out_ports;
    TF_Tensor **in_vals;
    TF_Tensor **out_vals;
    JobRecord rec;
} Job;

/* Callers release the previous outputs first, outside the timed region. */
static int session_run(Job *j, const char *which) {
    size_t ni = j->job->n_inputs, no = j->job->n_outputs;
    TF_SessionRun(j->m.sess, NULL, j->in_ports, j->in_vals, (int)ni, j->out_ports, j->out_vals, (int)no, NULL, 0,
                  NULL, j->m.st);
    if (TF_GetCode(j->m.st) != TF_OK) {
        set_err(&j->rec, "run", "%s failed: %s", which, tf_msg(j->m.st));
        return -1;
    }
    return 0;
}

/* Every TF object of the job is deleted on every path; a failure to close the session
 * fails the job. */
static void cleanup(Job *j) {
    const PlanJob *job = j->job;
    if (j->out_vals) release_outputs(j->out_vals, job->n_outputs);
    if (j->in_vals) free_inputs(j->in, j->in_vals, job->n_inputs);
    close_model(&j->m, &j->rec);
    if (j->in)
        for (size_t i = 0; i < job->n_inputs; i++) free(j->in[i].op_name);
    if (j->out)
        for (size_t i = 0; i < job->n_outputs; i++) free(j->out[i].op_name);
    free(j->in);
    free(j->out);
    free(j->in_ports);
    free(j->out_ports);
    free(j->in_vals);
    free(j->out_vals);
}

static void execute(Job *j, const Plan *plan) {
    const PlanJob *job = j->job;
    JobRecord *rec = &j->rec;
    size_t ni = job->n_inputs, no = job->n_outputs;
    if (ni > INT_MAX || no > INT_MAX) {
        set_err(rec, "plan", "too many inputs or outputs");
        return;
    }
    /* calloc(0) may return NULL; allocate at least one slot. */
    j->in = calloc(ni + 1, sizeof *j->in);
    j->out = calloc(no + 1, sizeof *j->out);
    j->in_ports = calloc(ni + 1, sizeof *j->in_ports);
    j->out_ports = calloc(no + 1, sizeof *j->out_ports);
    j->in_vals = calloc(ni + 1, sizeof *j->in_vals);
    j->out_vals = calloc(no + 1, sizeof *j->out_vals);
    int steady_ok = record_alloc_steady(rec, job->repeat) == 0;
    j->m.st = TF_NewStatus();
    if (!j->in || !j->out || !j->in_ports || !j->out_ports || !j->in_vals || !j->out_vals || !steady_ok) {
        set_err(rec, "load", "out of memory");
        return;
    }

    double t0 = now_s();
    if (load_model(&j->m, plan, job, rec)) return;
    rec->load_s = now_s() - t0;

    for (size_t i = 0; i < ni; i++) {
        j->in[i].pt = &job->inputs[i];
        j->in[i].what = "input";
        if (resolve_port(&j->m, job->format, &j->in[i], rec)) return;
        j->in_ports[i] = j->in[i].port;
    }
    for (size_t i = 0; i < no; i++) {
        j->out[i].pt = &job->outputs[i];
        j->out[i].what = "output";
        if (resolve_port(&j->m, job->format, &j->out[i], rec)) return;
        j->out_ports[i] = j->out[i].port;
    }

    for (size_t i = 0; i < ni; i++)
        if (read_input(&j->m, &j->in[i], &j->in_vals[i], rec)) return;

    t0 = now_s();
    if (session_run(j, "first run")) return;
    rec->first_run_s = now_s() - t0;

    for (size_t i = 0; i < no; i++)
        if (write_output(&j->out[i], j->out_vals[i], rec)) return;

    char which[64];
    for (uint64_t i = 0; i < job->warmup; i++) {
        snprintf(which, sizeof which, "warm-up run %llu", (unsigned long long)i + 1);
        release_outputs(j->out_vals, no);
        if (session_run(j, which)) return;
    }
    for (uint64_t i = 0; i < job->repeat; i++) {
        snprintf(which, sizeof which, "timed run %llu", (unsigned long long)i + 1);
        release_outputs(j->out_vals, no);
        t0 = now_s();
        if (session_run(j, which)) return;
        if (record_steady(rec, i, now_s() - t0, job->repeat)) return;
    }
}

int run_job(const Plan *plan, const PlanJob *job, StrBuf *out) {
    Job j;
    memset(&j, 0, sizeof j);
    j.job = job;
    record_init(&j.rec);
    if (job->error)
        set_err(&j.rec, "plan", "%s", job->error);
    else {
        execute(&j, plan);
        cleanup(&j);
    }
    record_render(&j.rec, job, out);
    int failed = j.rec.stage != NULL;
    record_free(&j.rec);
    return failed;
}
