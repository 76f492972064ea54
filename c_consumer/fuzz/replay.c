/* Runs a fuzz target's LLVMFuzzerTestOneInput over files given on the command line, without
 * libFuzzer: how tests/test_fuzz_regressions.py replays the corpora and crash reproducers
 * with gcc (optionally under -fsanitize=address,undefined). Exit 0 when every input passed;
 * a failing input aborts (its name is printed first). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (!f) {
            fprintf(stderr, "replay: cannot open %s\n", argv[i]);
            return 2;
        }
        size_t cap = 4096, len = 0, n;
        uint8_t *buf = malloc(cap);
        while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0) {
            len += n;
            if (len == cap) {
                uint8_t *nb = realloc(buf, cap *= 2);
                if (!nb) free(buf);
                buf = nb;
            }
        }
        fclose(f);
        if (!buf) {
            fprintf(stderr, "replay: out of memory reading %s\n", argv[i]);
            return 2;
        }
        fprintf(stderr, "replay: %s\n", argv[i]);
        /* An exact-size copy so ASan catches reads one past the input. */
        uint8_t *exact = malloc(len ? len : 1);
        if (!exact) return 2;
        for (size_t k = 0; k < len; k++) exact[k] = buf[k];
        free(buf);
        LLVMFuzzerTestOneInput(exact, len);
        free(exact);
    }
    printf("replayed %d input(s)\n", argc - 1);
    return 0;
}
