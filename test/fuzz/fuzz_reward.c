/* libFuzzer target: the built-in rewards over arbitrary completion text (the model writes
 * anything): answer extraction, accuracy against a fixed and a fuzzed solution, the format
 * check. The input is split at its first NUL into completion and solution. */
#include "sw_reward.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s) return 0;
    memcpy(s, data, size);
    s[size] = 0;
    size_t n = strlen(s);
    const char *sol = n < size ? s + n + 1 : "42";
    char a[64];
    sw_reward_extract_answer(s, a, sizeof a);
    sw_reward_extract_answer(s, a, 1);
    (void)sw_reward_accuracy(s, sol);
    (void)sw_reward_accuracy(s, "#### 1,234");
    (void)sw_reward_format(s);
    free(s);
    return 0;
}
