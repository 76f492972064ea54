/* Plan file parser (consumer contract v1): pure, fuzzable. */
#include "plan.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"

#define MAX_FIELDS 4

typedef struct {
    const char *p;
    size_t n;
} Field;

static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* A record type quoted in a message: at most 40 bytes, control chars as '?'. */
static void quote_field(Field f, char *out, size_t outlen) {
    size_t n = f.n < 40 ? f.n : 40;
    if (n >= outlen) n = outlen - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)f.p[i];
        out[i] = (c < 0x20 || c == 0x7F) ? '?' : (char)c;
    }
    out[n] = '\0';
}

static int field_is(Field f, const char *s) {
    size_t n = strlen(s);
    return f.n == n && memcmp(f.p, s, n) == 0;
}

static char *dup_field(Field f) {
    char *s = malloc(f.n + 1);
    if (!s) return NULL;
    memcpy(s, f.p, f.n);
    s[f.n] = '\0';
    return s;
}

/* Decimal digits only (no sign, no spaces), value <= max. */
static int parse_uint(Field f, uint64_t max, uint64_t *out) {
    if (f.n == 0) return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < f.n; i++) {
        unsigned char c = (unsigned char)f.p[i];
        if (c < '0' || c > '9') return -1;
        unsigned d = c - '0';
        if (v > (max - d) / 10) return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

static void free_tensors(PlanTensor *t, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(t[i].key);
        free(t[i].tensor);
        free(t[i].file);
    }
    free(t);
}

static void free_job(PlanJob *j) {
    free(j->id);
    free(j->model);
    free(j->tags);
    free(j->signature);
    free_tensors(j->inputs, j->n_inputs);
    free_tensors(j->outputs, j->n_outputs);
    free(j->error);
}

void plan_free(Plan *plan) {
    if (!plan) return;
    for (size_t i = 0; i < plan->n_jobs; i++) free_job(&plan->jobs[i]);
    free(plan->jobs);
    free(plan);
}

/* Records the first validation error of a job. Returns -1 only on OOM. */
static int job_fail(PlanJob *j, size_t line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int job_fail(PlanJob *j, size_t line, const char *fmt, ...) {
    if (j->error) return 0;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    StrBuf sb;
    sb_init(&sb);
    if (line)
        sb_printf(&sb, "plan line %zu: %s", line, msg);
    else
        sb_puts(&sb, msg);
    if (sb.failed) {
        sb_free(&sb);
        return -1;
    }
    j->error = sb.data;
    return 0;
}

/* Sets a once-only string field of a job; a repeat is a job error. */
static int set_once(PlanJob *j, size_t line, char **slot, Field f, const char *what) {
    if (*slot) return job_fail(j, line, "duplicate '%s' record in job", what);
    *slot = dup_field(f);
    return *slot ? 0 : -1;
}

/* Appends an input/output record (fields already checked non-empty). -1 on OOM. */
static int add_tensor(PlanJob *j, int is_input, const Field *fv) {
    PlanTensor **arr = is_input ? &j->inputs : &j->outputs;
    size_t *n = is_input ? &j->n_inputs : &j->n_outputs;
    PlanTensor *p = realloc(*arr, (*n + 1) * sizeof **arr);
    if (!p) return -1;
    *arr = p;
    PlanTensor *t = &p[*n];
    t->key = dup_field(fv[0]);
    t->tensor = dup_field(fv[1]);
    t->file = dup_field(fv[2]);
    (*n)++; /* counted even when partially allocated, so free_job cleans it */
    if (!t->key || !t->tensor || !t->file) return -1;
    return 0;
}

/* Checks done when the job is closed. Returns -1 only on OOM. */
static int validate_job(PlanJob *j) {
    if (j->error) return 0;
    if (!j->model) return job_fail(j, j->line, "job '%s' has no 'model' record", j->id);
    if (j->format == PLAN_FORMAT_NONE) return job_fail(j, j->line, "job '%s' has no 'format' record", j->id);
    if (j->format == PLAN_FORMAT_FROZEN) {
        if (j->tags) return job_fail(j, j->line, "job '%s': 'tags' is for saved_model only", j->id);
        if (j->signature) return job_fail(j, j->line, "job '%s': 'signature' is for saved_model only", j->id);
    }
    if (j->n_outputs == 0) return job_fail(j, j->line, "job '%s' has no 'output' record", j->id);
    for (size_t a = 0; a < j->n_inputs; a++)
        for (size_t b = a + 1; b < j->n_inputs; b++)
            if (strcmp(j->inputs[a].key, j->inputs[b].key) == 0)
                return job_fail(j, j->line, "job '%s': input '%s' given twice", j->id, j->inputs[a].key);
    for (size_t a = 0; a < j->n_outputs; a++)
        for (size_t b = a + 1; b < j->n_outputs; b++) {
            if (strcmp(j->outputs[a].key, j->outputs[b].key) == 0)
                return job_fail(j, j->line, "job '%s': output '%s' given twice", j->id, j->outputs[a].key);
            if (strcmp(j->outputs[a].file, j->outputs[b].file) == 0)
                return job_fail(j, j->line, "job '%s': outputs '%s' and '%s' write the same file", j->id,
                                j->outputs[a].key, j->outputs[b].key);
        }
    return 0;
}

int plan_parse(const char *data, size_t len, Plan **out, char *err, size_t errlen) {
    *out = NULL;
    Plan *plan = calloc(1, sizeof *plan);
    if (!plan) {
        set_err(err, errlen, "out of memory");
        return -1;
    }
    PlanJob *cur = NULL; /* open job, points into plan->jobs */
    size_t line = 0;
    size_t pos = 0;
    int saw_header = 0;

    while (pos < len) {
        line++;
        const char *start = data + pos;
        const char *nl = memchr(start, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - start) : len - pos;
        pos += n + (nl ? 1 : 0);

        /* The plan is UTF-8 text without NULs (values become C strings). */
        for (size_t i = 0; i < n;) {
            const unsigned char *u = (const unsigned char *)start + i;
            if (*u == 0) {
                set_err(err, errlen, "plan line %zu: NUL byte", line);
                goto fail;
            }
            size_t k = utf8_seq_len(u, n - i);
            if (k == 0) {
                set_err(err, errlen, "plan line %zu: not valid UTF-8", line);
                goto fail;
            }
            i += k;
        }

        Field fv[MAX_FIELDS + 1];
        size_t nf = 0;
        int too_many = 0;
        for (size_t i = 0, fs = 0;; i++) {
            if (i == n || start[i] == '\t') {
                if (nf == MAX_FIELDS) {
                    too_many = 1;
                    break;
                }
                fv[nf].p = start + fs;
                fv[nf].n = i - fs;
                nf++;
                fs = i + 1;
                if (i == n) break;
            }
        }

        if (!saw_header) {
            if (!(nf == 2 && field_is(fv[0], "tfinterop-plan"))) {
                set_err(err, errlen, "plan line 1: expected 'tfinterop-plan<TAB>1'");
                goto fail;
            }
            if (!field_is(fv[1], "1")) {
                char q[48];
                quote_field(fv[1], q, sizeof q);
                set_err(err, errlen, "plan line 1: unsupported plan version '%s' (this consumer reads 1)", q);
                goto fail;
            }
            saw_header = 1;
            continue;
        }
        if (n == 0 || start[0] == '#') continue;

        Field type = fv[0];
        char tq[48];
        quote_field(type, tq, sizeof tq);
        int want;
        if (field_is(type, "threads"))
            want = 3;
        else if (field_is(type, "job") || field_is(type, "model") || field_is(type, "format") ||
                 field_is(type, "tags") || field_is(type, "signature") || field_is(type, "warmup") ||
                 field_is(type, "repeat"))
            want = 2;
        else if (field_is(type, "input") || field_is(type, "output"))
            want = 4;
        else if (field_is(type, "end"))
            want = 1;
        else if (field_is(type, "tfinterop-plan")) {
            set_err(err, errlen, "plan line %zu: 'tfinterop-plan' header repeated", line);
            goto fail;
        } else {
            set_err(err, errlen, "plan line %zu: unknown record type '%s'", line, tq);
            goto fail;
        }
        if (too_many || (int)nf != want) {
            set_err(err, errlen, "plan line %zu: '%s' record needs %d field%s, got %s%zu", line, tq, want,
                    want == 1 ? "" : "s", too_many ? "more than " : "", nf);
            goto fail;
        }
        for (size_t i = 1; i < nf; i++)
            if (fv[i].n == 0) {
                set_err(err, errlen, "plan line %zu: '%s' record has an empty field", line, tq);
                goto fail;
            }

        if (field_is(type, "threads")) {
            if (plan->has_threads) {
                set_err(err, errlen, "plan line %zu: 'threads' given twice", line);
                goto fail;
            }
            if (plan->n_jobs > 0) {
                set_err(err, errlen, "plan line %zu: 'threads' must come before the first job", line);
                goto fail;
            }
            uint64_t intra, inter;
            if (parse_uint(fv[1], INT32_MAX, &intra) || parse_uint(fv[2], INT32_MAX, &inter)) {
                set_err(err, errlen, "plan line %zu: 'threads' values must be integers in 0..%d", line, INT32_MAX);
                goto fail;
            }
            plan->has_threads = 1;
            plan->intra_threads = (int32_t)intra;
            plan->inter_threads = (int32_t)inter;
            continue;
        }
        if (field_is(type, "job")) {
            if (cur) {
                char q[48];
                quote_field((Field){cur->id, strlen(cur->id)}, q, sizeof q);
                set_err(err, errlen, "plan line %zu: 'job' before 'end' of job '%s'", line, q);
                goto fail;
            }
            for (size_t i = 0; i < plan->n_jobs; i++) {
                if (strlen(plan->jobs[i].id) == fv[1].n && memcmp(plan->jobs[i].id, fv[1].p, fv[1].n) == 0) {
                    char q[48];
                    quote_field(fv[1], q, sizeof q);
                    set_err(err, errlen, "plan line %zu: duplicate job ID '%s' (first on line %zu)", line, q,
                            plan->jobs[i].line);
                    goto fail;
                }
            }
            PlanJob *jobs = realloc(plan->jobs, (plan->n_jobs + 1) * sizeof *jobs);
            if (!jobs) goto oom;
            plan->jobs = jobs;
            cur = &jobs[plan->n_jobs++];
            memset(cur, 0, sizeof *cur);
            cur->line = line;
            cur->repeat = 1;
            cur->id = dup_field(fv[1]);
            if (!cur->id) goto oom;
            continue;
        }
        if (!cur) {
            set_err(err, errlen, "plan line %zu: '%s' record outside a job", line, tq);
            goto fail;
        }
        int rc = 0;
        if (field_is(type, "end")) {
            rc = validate_job(cur);
            cur = NULL;
        } else if (field_is(type, "model")) {
            rc = set_once(cur, line, &cur->model, fv[1], "model");
        } else if (field_is(type, "tags")) {
            const char *t = fv[1].p;
            size_t tl = fv[1].n;
            int empty_tag = t[0] == ',' || t[tl - 1] == ',';
            for (size_t i = 0; i + 1 < tl; i++)
                if (t[i] == ',' && t[i + 1] == ',') empty_tag = 1;
            if (empty_tag) {
                char q[48];
                quote_field(fv[1], q, sizeof q);
                set_err(err, errlen, "plan line %zu: empty tag in tag set '%s'", line, q);
                goto fail;
            }
            rc = set_once(cur, line, &cur->tags, fv[1], "tags");
        } else if (field_is(type, "signature")) {
            rc = set_once(cur, line, &cur->signature, fv[1], "signature");
        } else if (field_is(type, "format")) {
            if (cur->format != PLAN_FORMAT_NONE)
                rc = job_fail(cur, line, "duplicate 'format' record in job");
            else if (field_is(fv[1], "frozen"))
                cur->format = PLAN_FORMAT_FROZEN;
            else if (field_is(fv[1], "saved_model"))
                cur->format = PLAN_FORMAT_SAVED_MODEL;
            else {
                char q[48];
                quote_field(fv[1], q, sizeof q);
                set_err(err, errlen, "plan line %zu: format must be 'frozen' or 'saved_model', got '%s'", line, q);
                goto fail;
            }
        } else if (field_is(type, "warmup") || field_is(type, "repeat")) {
            int is_rep = field_is(type, "repeat");
            static const char *names[2] = {"warmup", "repeat"};
            int *seen = is_rep ? &cur->seen_repeat : &cur->seen_warmup;
            uint64_t v;
            char q[48];
            quote_field(fv[1], q, sizeof q);
            /* A malformed value is a broken record (whole plan); a repeated record
             * only concerns this job. */
            if (parse_uint(fv[1], UINT32_MAX, &v)) {
                set_err(err, errlen, "plan line %zu: %s must be an integer in 0..%u, got '%s'", line,
                        names[is_rep], UINT32_MAX, q);
                goto fail;
            }
            if (is_rep && v == 0) {
                set_err(err, errlen, "plan line %zu: repeat must be >= 1", line);
                goto fail;
            }
            if (*seen)
                rc = job_fail(cur, line, "duplicate '%s' record in job", names[is_rep]);
            else if (is_rep)
                cur->repeat = v;
            else
                cur->warmup = v;
            *seen = 1;
        } else if (field_is(type, "input")) {
            rc = add_tensor(cur, 1, &fv[1]);
        } else if (field_is(type, "output")) {
            rc = add_tensor(cur, 0, &fv[1]);
        }
        if (rc) goto oom;
    }
    if (!saw_header) {
        set_err(err, errlen, "empty plan: expected 'tfinterop-plan<TAB>1' on line 1");
        goto fail;
    }
    if (cur) {
        char q[48];
        quote_field((Field){cur->id, strlen(cur->id)}, q, sizeof q);
        set_err(err, errlen, "plan ends inside job '%s' (no 'end' record)", q);
        goto fail;
    }
    *out = plan;
    return 0;
oom:
    set_err(err, errlen, "out of memory while reading the plan");
fail:
    plan_free(plan);
    return -1;
}
