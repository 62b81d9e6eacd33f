/* libFuzzer target: the benchmark CSV reader (lib/eval/sw_csv.c) over arbitrary bytes, then the
 * row checks a task reader makes (field counts, answer letters) over what it returns. */
#include "sw_bench.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct sw_csv *c = NULL;
    if (sw_csv_parse("fuzz.csv", (const char *)data, size, &c) == 0) {
        size_t total = 0;
        for (size_t r = 0; r < c->nrows; r++)
            for (size_t f = 0; f < c->rows[r].nf; f++)
                total += strlen(c->rows[r].f[f]);
        /* every field is inside the input's bytes: unescaping only shrinks */
        if (total > size) __builtin_trap();
        sw_csv_free(c);
    }
    return 0;
}
