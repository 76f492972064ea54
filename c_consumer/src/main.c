/* tfinterop C consumer: command line, results stream, exit status. */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "plan.h"
#include "registry.h"
#include "runner.h"
#include "strbuf.h"
#include "tensorflow/c/c_api.h"

#define EXIT_JOB_FAILED 1
#define EXIT_USAGE 2

/* Peak RSS of this process image in KiB. getrusage's ru_maxrss survives execve, so a
 * consumer started by a big parent (the harness with TensorFlow imported) would report the
 * parent's peak; /proc/self/status VmHWM belongs to this image alone. */
static long peak_rss_kb(void) {
    FILE *status = fopen("/proc/self/status", "r");
    long kb = -1;
    if (status) {
        char line[256];
        while (fgets(line, sizeof line, status)) {
            if (sscanf(line, "VmHWM: %ld kB", &kb) == 1) break;
        }
        fclose(status);
    }
    if (kb < 0) {
        struct rusage ru;
        kb = getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : -1;
    }
    return kb;
}

static const char kUsage[] =
    "usage: tfinterop-c-consumer --plan PLAN.tsv --results RESULTS.jsonl\n"
    "       tfinterop-c-consumer --version\n"
    "       tfinterop-c-consumer [--registered-ops OPLIST.pb] [--registered-kernels KERNELLIST.pb]\n"
    "       tfinterop-c-consumer --model PATH --format frozen|saved_model [--tags serve[,gpu]]\n"
    "           [--signature KEY] --input KEY[@TENSOR]=FILE.npy ... --output KEY[@TENSOR]=FILE.npy ...\n"
    "           [--repeat N] [--warmup N] [--threads INTRA,INTER] [--results FILE.jsonl]\n";

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("tfinterop-c-consumer: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(" (see --help)\n", stderr);
    va_end(ap);
    return EXIT_USAGE;
}

static void consumer_record(StrBuf *sb) {
    sb_puts(sb, "{\"record\": \"consumer\", \"name\": \"c\", \"contract\": 1, \"tf_version\": ");
    sb_json_cstr(sb, TF_Version());
    sb_puts(sb, ", \"binding\": \"TensorFlow C API\"}\n");
}

/* Writes one record and flushes, so a crash later still leaves it on disk. */
static int emit(FILE *out, StrBuf *sb) {
    if (sb->failed) {
        fputs("tfinterop-c-consumer: out of memory while writing a result record\n", stderr);
        return -1;
    }
    if (fwrite(sb->data, 1, sb->len, out) != sb->len || fflush(out) != 0) {
        fprintf(stderr, "tfinterop-c-consumer: cannot write results: %s\n", strerror(errno));
        return -1;
    }
    return 0;
}

static int read_file(const char *path, char **data, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    StrBuf sb;
    sb_init(&sb);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) sb_append(&sb, chunk, n);
    int e = sb.failed ? ENOMEM : ferror(f) ? errno : 0;
    fclose(f);
    if (e) {
        sb_free(&sb);
        errno = e;
        return -1;
    }
    *data = sb.data;
    *len = sb.len;
    return 0;
}

/* A value of the shorthand that cannot go into a plan field. */
static int bad_value(const char *v) { return strchr(v, '\t') || strchr(v, '\n'); }

/* --input/--output KEY[@TENSOR]=FILE -> plan record fields. */
static int add_tensor_record(StrBuf *plan, const char *rec, const char *arg) {
    const char *eq = strchr(arg, '=');
    if (!eq) return usage_error("expected KEY[@TENSOR]=FILE, got '%s'", arg);
    const char *at = memchr(arg, '@', (size_t)(eq - arg));
    size_t keylen = (size_t)((at ? at : eq) - arg);
    sb_printf(plan, "%s\t%.*s\t", rec, (int)keylen, arg);
    if (at)
        sb_append(plan, at + 1, (size_t)(eq - at - 1));
    else
        sb_puts(plan, "-");
    sb_printf(plan, "\t%s\n", eq + 1);
    return 0;
}

int main(int argc, char **argv) {
    const char *plan_path = NULL, *results_path = NULL;
    const char *ops_path = NULL, *kernels_path = NULL;
    int version = 0, shorthand = 0;
    StrBuf cli; /* the shorthand's job records, in plan syntax */
    StrBuf head;
    sb_init(&cli);
    sb_init(&head);
    int rc = EXIT_USAGE;
    char *text = NULL;
    size_t text_len = 0;
    Plan *plan = NULL;
    FILE *out = NULL;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--version") == 0) {
            version = 1;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(kUsage, stdout);
            rc = 0;
            goto out;
        }
        static const char *with_value[] = {"--plan",      "--results", "--model",  "--format",
                                           "--tags",      "--signature", "--input", "--output",
                                           "--repeat",    "--warmup",  "--threads", "--registered-ops",
                                           "--registered-kernels"};
        int known = 0;
        for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++)
            if (strcmp(a, with_value[k]) == 0) known = 1;
        if (!known) {
            rc = usage_error("unknown argument '%s'", a);
            goto out;
        }
        if (i + 1 >= argc) {
            rc = usage_error("%s needs a value", a);
            goto out;
        }
        const char *v = argv[++i];
        if (bad_value(v)) {
            rc = usage_error("the value of %s contains a TAB or newline", a);
            goto out;
        }
        if (strcmp(a, "--registered-ops") == 0 || strcmp(a, "--registered-kernels") == 0) {
            const char **slot = strcmp(a, "--registered-ops") == 0 ? &ops_path : &kernels_path;
            if (*slot) {
                rc = usage_error("%s given twice", a);
                goto out;
            }
            *slot = v;
            continue;
        }
        if (strcmp(a, "--plan") == 0 || strcmp(a, "--results") == 0) {
            const char **slot = a[2] == 'p' ? &plan_path : &results_path;
            if (*slot) {
                rc = usage_error("%s given twice", a);
                goto out;
            }
            *slot = v;
            continue;
        }
        shorthand = 1;
        if (strcmp(a, "--input") == 0 || strcmp(a, "--output") == 0) {
            if ((rc = add_tensor_record(&cli, a + 2, v)) != 0) goto out;
            rc = EXIT_USAGE;
        } else if (strcmp(a, "--threads") == 0) {
            const char *comma = strchr(v, ',');
            if (!comma) {
                rc = usage_error("--threads expects INTRA,INTER, got '%s'", v);
                goto out;
            }
            sb_printf(&head, "threads\t%.*s\t%s\n", (int)(comma - v), v, comma + 1);
        } else {
            sb_printf(&cli, "%s\t%s\n", a + 2, v); /* model, format, tags, signature, repeat, warmup */
        }
    }

    if (version) {
        if (plan_path || results_path || shorthand || ops_path || kernels_path) {
            rc = usage_error("--version takes no other arguments");
            goto out;
        }
        StrBuf sb;
        sb_init(&sb);
        consumer_record(&sb);
        rc = emit(stdout, &sb) ? EXIT_USAGE : 0;
        sb_free(&sb);
        goto out;
    }

    if (ops_path || kernels_path) {
        if (plan_path || results_path || shorthand) {
            rc = usage_error("--registered-ops/--registered-kernels take no plan or job options");
            goto out;
        }
        rc = dump_registry(ops_path, kernels_path) ? EXIT_USAGE : 0;
        goto out;
    }

    char err[512];
    if (plan_path) {
        if (shorthand) {
            rc = usage_error("--plan cannot be combined with the one-job shorthand options");
            goto out;
        }
        if (!results_path) {
            rc = usage_error("--plan needs --results");
            goto out;
        }
        if (read_file(plan_path, &text, &text_len)) {
            fprintf(stderr, "tfinterop-c-consumer: cannot read plan '%s': %s\n", plan_path, strerror(errno));
            goto out;
        }
        if (plan_parse(text, text_len, &plan, err, sizeof err)) {
            fprintf(stderr, "tfinterop-c-consumer: invalid plan '%s': %s\n", plan_path, err);
            goto out;
        }
    } else {
        if (!shorthand) {
            fputs(kUsage, stderr);
            goto out;
        }
        StrBuf pt;
        sb_init(&pt);
        sb_puts(&pt, "tfinterop-plan\t1\n");
        sb_append(&pt, head.data ? head.data : "", head.len);
        sb_puts(&pt, "job\tcli\n");
        sb_append(&pt, cli.data ? cli.data : "", cli.len);
        sb_puts(&pt, "end\n");
        if (pt.failed) {
            sb_free(&pt);
            fputs("tfinterop-c-consumer: out of memory\n", stderr);
            goto out;
        }
        int prc = plan_parse(pt.data, pt.len, &plan, err, sizeof err);
        sb_free(&pt);
        /* In the shorthand every plan problem is a usage error: there is one job and a person typing it. */
        if (prc) {
            rc = usage_error("%s", err);
            goto out;
        }
        if (plan->jobs[0].error) {
            /* The line numbers refer to the generated plan: drop them. */
            const char *msg = plan->jobs[0].error;
            if (strncmp(msg, "plan line ", 10) == 0 && strstr(msg, ": ")) msg = strstr(msg, ": ") + 2;
            rc = usage_error("%s", msg);
            goto out;
        }
    }

    if (results_path) {
        out = fopen(results_path, "w");
        if (!out) {
            fprintf(stderr, "tfinterop-c-consumer: cannot create results '%s': %s\n", results_path, strerror(errno));
            goto out;
        }
    }
    FILE *rf = out ? out : stdout;
    StrBuf rec;
    sb_init(&rec);
    consumer_record(&rec);
    if (emit(rf, &rec)) goto write_failed;
    size_t failed = 0;
    for (size_t i = 0; i < plan->n_jobs; i++) {
        sb_clear(&rec);
        if (run_job(plan, &plan->jobs[i], &rec)) failed++;
        sb_puts(&rec, "\n");
        if (emit(rf, &rec)) goto write_failed;
    }
    long max_rss = peak_rss_kb();
    sb_clear(&rec);
    sb_printf(&rec, "{\"record\": \"done\", \"jobs\": %zu, \"failed\": %zu, \"max_rss_kb\": %ld}\n", plan->n_jobs,
              failed, max_rss);
    if (emit(rf, &rec)) goto write_failed;
    sb_free(&rec);
    rc = failed ? EXIT_JOB_FAILED : 0;
    goto out;
write_failed:
    /* Without a results file the harness can trust nothing: treat like an unusable invocation. */
    sb_free(&rec);
    rc = EXIT_USAGE;
out:
    if (out && fclose(out) != 0 && rc != EXIT_USAGE) {
        fprintf(stderr, "tfinterop-c-consumer: cannot write results: %s\n", strerror(errno));
        rc = EXIT_USAGE;
    }
    plan_free(plan);
    free(text);
    sb_free(&cli);
    sb_free(&head);
    return rc;
}
