/* libFuzzer target: the YAML task spec reader (lib/eval/sw_bench_yaml.c) over arbitrary bytes
 * (its data files resolve under a folder that does not exist, so only the spec is parsed), and
 * the JSON row flattening + prompt template renderer with the input as both row and template. */
#include "sw_bench.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct sw_bench_task_opts o = {
        "/nonexistent-sw-fuzz/t.yaml", "/nonexistent-sw-fuzz", NULL, -1, 0, 0, 0};
    struct sw_bench_task *t = NULL;
    if (sw_bench_yaml_load(o.name, (const char *)data, size, &o, &t) == 0) sw_bench_task_free(t);
    struct sw_doc d = {0};
    if (sw_doc_from_json(&d, (const char *)data, size, "fuzz") == 0) {
        char *tpl = malloc(size + 1), *out = NULL;
        if (tpl) {
            for (size_t i = 0; i < size; i++)
                tpl[i] = data[i] ? (char)data[i] : ' ';
            tpl[size] = 0;
            if (sw_doc_render(&d, tpl, "fuzz", &out) == 0) free(out);
            free(tpl);
        }
    }
    sw_doc_release(&d);
    return 0;
}
