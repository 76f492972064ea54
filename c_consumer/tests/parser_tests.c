/* Unit tests of the pure parsers (npy.c, plan.c), built without TensorFlow:
 *   cc -std=c11 -Wall -Wextra -Werror [-fsanitize=address,undefined] -Isrc \
 *      tests/parser_tests.c src/npy.c src/plan.c src/strbuf.c src/dtypes.c
 * Prints one line per failed check and exits 1 if any failed (tests/test_fuzz_regressions.py). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "npy.h"
#include "plan.h"

static int failures, checks;

#define EXPECT(cond, ...)                                        \
    do {                                                         \
        checks++;                                                \
        if (!(cond)) {                                           \
            failures++;                                          \
            fprintf(stderr, "%s:%d: FAILED: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                        \
            fputc('\n', stderr);                                 \
        }                                                        \
    } while (0)

/* A version 1.0 npy file: preamble, dict padded to 64 bytes with '\n', then data_len zero bytes. */
static size_t make_npy(unsigned char *out, size_t cap, const char *dict, size_t data_len) {
    size_t dl = strlen(dict);
    size_t hlen = dl + 1;
    while ((10 + hlen) % 64) hlen++;
    if (10 + hlen + data_len > cap) return 0;
    memcpy(out, "\x93NUMPY\x01\x00", 8);
    out[8] = (unsigned char)(hlen & 0xFF);
    out[9] = (unsigned char)(hlen >> 8);
    memcpy(out + 10, dict, dl);
    memset(out + 10 + dl, ' ', hlen - dl - 1);
    out[10 + hlen - 1] = '\n';
    memset(out + 10 + hlen, 0, data_len);
    return 10 + hlen + data_len;
}

/* Parses and expects an error containing `want`; returns the message for further checks. */
static void npy_refused(const unsigned char *buf, size_t len, const char *want, int line) {
    NpyInfo info;
    char err[256] = "";
    int rc = npy_parse(buf, len, &info, err, sizeof err);
    checks++;
    if (rc != -1 || !strstr(err, want) || strchr(err, '\n')) {
        failures++;
        fprintf(stderr, "%s:%d: FAILED: expected an error with '%s', got rc=%d '%s'\n", __FILE__, line, want, rc,
                err);
    }
}

static void npy_dict_refused(const char *dict, size_t data_len, const char *want, int line) {
    unsigned char buf[1024];
    size_t n = make_npy(buf, sizeof buf, dict, data_len);
    npy_refused(buf, n, want, line);
}

#define NPY_DICT_REFUSED(dict, data_len, want) npy_dict_refused(dict, data_len, want, __LINE__)
#define NPY_REFUSED(buf, len, want) npy_refused(buf, len, want, __LINE__)

static void test_npy(void) {
    unsigned char buf[1024];
    NpyInfo info;
    char err[256];

    size_t n = make_npy(buf, sizeof buf, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 24);
    EXPECT(npy_parse(buf, n, &info, err, sizeof err) == 0, "valid f4 2x3 refused: %s", err);
    EXPECT(info.ndim == 2 && info.shape[0] == 2 && info.shape[1] == 3 && info.n_elems == 6 && info.data_len == 24,
           "wrong info");
    n = make_npy(buf, sizeof buf, "{'descr': '|b1', 'fortran_order': False, 'shape': (), }", 1);
    EXPECT(npy_parse(buf, n, &info, err, sizeof err) == 0 && info.ndim == 0 && info.n_elems == 1, "0-d bool: %s",
           err);
    n = make_npy(buf, sizeof buf, "{'descr': '<f8', 'fortran_order': False, 'shape': (0, 9223372036854775807), }",
                 0);
    EXPECT(npy_parse(buf, n, &info, err, sizeof err) == 0 && info.n_elems == 0, "empty with huge dim: %s", err);

    /* magic, version, header length */
    NPY_REFUSED((const unsigned char *)"", 0, "shorter than the npy preamble");
    NPY_REFUSED((const unsigned char *)"\x93NUMPZ\x01\x00\x00\x00", 10, "bad magic");
    NPY_REFUSED((const unsigned char *)"\x93NUMPY\x04\x00\x00\x00", 10, "unsupported npy format version 4.0");
    NPY_REFUSED((const unsigned char *)"\x93NUMPY\x01\x01\x00\x00", 10, "version 1.1");
    NPY_REFUSED((const unsigned char *)"\x93NUMPY\x01\x00\x40\x00{", 11, "truncated npy file: header length 64");
    NPY_REFUSED((const unsigned char *)"\x93NUMPY\x02\x00\x00\x00", 10, "no header length");
    NPY_REFUSED((const unsigned char *)"\x93NUMPY\x02\x00\xff\xff\xff\xff", 12, "exceeds the 65536-byte limit");

    /* dict syntax */
    NPY_DICT_REFUSED("[1, 2]", 0, "not a dict");
    NPY_DICT_REFUSED("{'descr' '<f4'}", 0, "malformed dict");
    NPY_DICT_REFUSED("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), } x", 4, "trailing bytes");
    NPY_DICT_REFUSED("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}", 4, "unexpected key 'x'");
    NPY_DICT_REFUSED("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", 4,
                     "duplicate key");
    NPY_DICT_REFUSED("{'descr': '<f4', 'shape': (1,)}", 4, "missing key 'fortran_order'");
    NPY_DICT_REFUSED("{'descr': '<f4', 'fortran_order': False, 'shape': (1,)", 4, "malformed dict");
    NPY_DICT_REFUSED("{'descr': '<f4\\n', 'fortran_order': False, 'shape': (1,)}", 4, "'descr' is not a string");

    /* descr / dtype */
    NPY_DICT_REFUSED("{'descr': '>f4', 'fortran_order': False, 'shape': (1,)}", 4, "unsupported dtype descr '>f4'");
    NPY_DICT_REFUSED("{'descr': '|O', 'fortran_order': False, 'shape': (1,)}", 8, "unsupported dtype descr '|O'");
    NPY_DICT_REFUSED("{'descr': [('a', '<i4')], 'fortran_order': False, 'shape': (1,)}", 4, "structured dtypes");
    NPY_DICT_REFUSED("{'descr': 1, 'fortran_order': False, 'shape': (1,)}", 4, "'descr' is not a string");

    /* fortran_order */
    NPY_DICT_REFUSED("{'descr': '<f4', 'fortran_order': True, 'shape': (1,)}", 4, "fortran_order True");
    NPY_DICT_REFUSED("{'descr': '<f4', 'fortran_order': Truex, 'shape': (1,)}", 4, "not True or False");
    NPY_DICT_REFUSED("{'descr': '<f4', 'fortran_order': 0, 'shape': (1,)}", 4, "not True or False");

    /* shape entries */
    NPY_DICT_REFUSED("{'descr': '<f4', 'fortran_order': False, 'shape': [1]}", 4, "'shape' is not a tuple");
    NPY_DICT_REFUSED("{'descr': '<f4', 'fortran_order': False, 'shape': (1)}", 4, "'shape' is not a tuple");
    NPY_DICT_REFUSED("{'descr': '<f4', 'fortran_order': False, 'shape': (2, -1)}", 4, "negative dimension 2");
    NPY_DICT_REFUSED("{'descr': '<f4', 'fortran_order': False, 'shape': (9223372036854775808,)}", 4,
                     "too large");
    NPY_DICT_REFUSED("{'descr': '<f4', 'fortran_order': False, 'shape': (01,)}", 4, "malformed dimension 1");
    NPY_DICT_REFUSED("{'descr': '<f4', 'fortran_order': False, 'shape': (1 2)}", 4, "malformed 'shape' tuple");
    NPY_DICT_REFUSED("{'descr': '<f4', 'fortran_order': False, 'shape': (1.5,)}", 4, "malformed 'shape' tuple");
    {
        char dict[512] = "{'descr': '|u1', 'fortran_order': False, 'shape': (";
        for (int i = 0; i < NPY_MAX_DIMS + 1; i++) strcat(dict, "1,");
        strcat(dict, ")}");
        NPY_DICT_REFUSED(dict, 1, "more than 64 dimensions");
    }

    /* shape product vs itemsize, data length vs file size */
    NPY_DICT_REFUSED("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296)}", 0,
                     "more than 2^63-1 elements");
    NPY_DICT_REFUSED("{'descr': '<c16', 'fortran_order': False, 'shape': (1152921504606846976,)}", 0,
                     "need more than 2^63-1 bytes");
    NPY_DICT_REFUSED("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000,)}", 4,
                     "needs 4000000000000 data bytes, file has 4");
    NPY_DICT_REFUSED("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", 9, "needs 8 data bytes, file has 9");

    /* Incremental reading: a short buffer asks for more, never past the file. */
    n = make_npy(buf, sizeof buf, "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }", 24);
    size_t need = 0;
    EXPECT(npy_parse_header(buf, 8, n, &info, &need, err, sizeof err) == 1 && need == 10, "need preamble");
    int r = npy_parse_header(buf, 10, n, &info, &need, err, sizeof err);
    EXPECT(r == 1 && need == n - 24, "need header: rc %d need %zu %s", r, need, err);
    r = npy_parse_header(buf, need, n, &info, &need, err, sizeof err);
    EXPECT(r == 0 && info.data_offset == n - 24, "header: rc %d %s", r, err);

    /* The writer's header parses back (round trip, as the fuzz target checks). */
    StrBuf sb;
    sb_init(&sb);
    int64_t shape[3] = {2, 0, 5};
    npy_write_header(&sb, "<u2", shape, 3);
    EXPECT(!sb.failed && sb.len % 64 == 0, "header not padded to 64");
    EXPECT(npy_parse_header((unsigned char *)sb.data, sb.len, sb.len, &info, &need, err, sizeof err) == 0 &&
               info.ndim == 3 && info.shape[2] == 5 && strcmp(info.dtype->name, "uint16") == 0,
           "round trip: %s", err);
    sb_free(&sb);
}

static void plan_refused(const char *text, size_t len, const char *want, int line) {
    Plan *p = NULL;
    char err[256] = "";
    int rc = plan_parse(text, len, &p, err, sizeof err);
    checks++;
    if (rc != -1 || p || !strstr(err, want)) {
        failures++;
        fprintf(stderr, "%s:%d: FAILED: expected a plan error with '%s', got rc=%d '%s'\n", __FILE__, line, want,
                rc, err);
        plan_free(p);
    }
}
#define PLAN_REFUSED(text, want) plan_refused(text, sizeof(text) - 1, want, __LINE__)

#define HEAD "tfinterop-plan\t1\n"
#define JOB "job\tj\nmodel\tm.pb\nformat\tfrozen\ninput\tx\t-\tx.npy\noutput\ty\ty:0\ty.npy\n"

static void test_plan(void) {
    Plan *p = NULL;
    char err[256];
    EXPECT(plan_parse(HEAD "threads\t2\t1\n" JOB "repeat\t3\nend\n", strlen(HEAD "threads\t2\t1\n" JOB "repeat\t3\nend\n"),
                      &p, err, sizeof err) == 0,
           "valid plan refused: %s", err);
    EXPECT(p && p->n_jobs == 1 && p->jobs[0].repeat == 3 && p->intra_threads == 2 && !p->jobs[0].error,
           "wrong plan");
    plan_free(p);

    PLAN_REFUSED("", "empty plan");
    PLAN_REFUSED("tfinterop-plan\t2\n", "unsupported plan version '2'");
    PLAN_REFUSED(HEAD "bogus\n", "unknown record type 'bogus'");
    PLAN_REFUSED(HEAD "job\ta\0" "b\n", "NUL byte");
    PLAN_REFUSED(HEAD "job\t\xff\n", "not valid UTF-8");
    PLAN_REFUSED(HEAD JOB "repeat\t0\nend\n", "repeat must be >= 1");
    PLAN_REFUSED(HEAD JOB "repeat\t4294967296\nend\n", "repeat must be an integer");
    PLAN_REFUSED(HEAD "threads\t2147483648\t0\n", "'threads' values must be integers");
    PLAN_REFUSED(HEAD JOB "end\n" JOB "end\n", "duplicate job ID 'j'");
    PLAN_REFUSED(HEAD JOB, "no 'end' record");
    PLAN_REFUSED(HEAD JOB "tags\tserve,\nend\n", "empty tag");
    PLAN_REFUSED(HEAD "job\tj\ninput\tx\tx.npy\n", "needs 4 fields, got 3");
    PLAN_REFUSED(HEAD "job\tj\ninput\tx\t\tx.npy\n", "empty field");

    /* Job-level problems fail only that job. */
    const char *t = HEAD JOB "format\tsaved_model\nend\n";
    EXPECT(plan_parse(t, strlen(t), &p, err, sizeof err) == 0 && p->jobs[0].error &&
               strstr(p->jobs[0].error, "duplicate 'format'"),
           "duplicate format is a job error");
    plan_free(p);
}

int main(void) {
    test_npy();
    test_plan();
    printf("%d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}
