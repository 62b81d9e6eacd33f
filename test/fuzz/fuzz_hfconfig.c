/* libFuzzer target: HF config.json parsing (sw_model_config_parse) over arbitrary bytes. */
#include "sw_hfconfig.h"

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct sw_model_config c;
    (void)sw_model_config_parse((const char *)data, size, "fuzz/config.json", &c);
    return 0;
}
