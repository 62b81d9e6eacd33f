/* libFuzzer target: the YAML config reader over arbitrary bytes, with a table of every type. */
#include "sw_config.h"
#include "sw_err.h"

#include <stddef.h>
#include <stdint.h>

struct fuzz_opts {
    double f;
    int64_t i;
    int b;
    char *s, *c, *l;
};

static const struct sw_opt table[] = {
    {"learning_rate", SW_OPT_FLOAT, offsetof(struct fuzz_opts, f), "1e-4", "", 0, 1, NULL, NULL},
    {"max_length", SW_OPT_INT, offsetof(struct fuzz_opts, i), "2048", "", 1, 1 << 20, NULL, NULL},
    {"packing", SW_OPT_BOOL, offsetof(struct fuzz_opts, b), "false", "", 0, 0, NULL, NULL},
    {"output_dir", SW_OPT_STRING, offsetof(struct fuzz_opts, s), NULL, "", 0, 0, NULL, NULL},
    {"tuner_type", SW_OPT_CHOICE, offsetof(struct fuzz_opts, c), "lora", "", 0, 0, "full|lora",
     "train_type"},
    {"target_modules", SW_OPT_LIST, offsetof(struct fuzz_opts, l), NULL, "", 0, 0, NULL, NULL},
    SW_OPT_END,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct fuzz_opts o;
    if (sw_config_defaults(table, &o) == 0)
        (void)sw_config_load_yaml_mem(table, &o, (const char *)data, size, "fuzz.yaml");
    sw_config_release(table, &o);
    return 0;
}
