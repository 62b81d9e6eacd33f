/* fuzz_dataset — untrusted dataset bytes through sw-pack's parsers: the row reader (JSON array or
 * JSON lines, gzip or not, through an in-memory file), format detection, conversion of every row
 * under every format, and rendering under every chat template (no tokenizer needed to render).
 * Any crash, sanitizer report or leak is a bug; errors are expected and fine. */
#include "sw_dataset.h"
#include "sw_err.h"
#include "sw_log.h"
#include "sw_template.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

static const char *const templates[] = {"chatml", "default", "llama", "llama3",
                                        "qwen",   "qwen2_5", "qwen3"};

static void exercise(const struct sw_conv *c) {
    struct sw_template_render r = {0};
    struct sw_template_tokens tk = {"<s>", "</s>"};
    for (size_t t = 0; t < sizeof templates / sizeof *templates; t++)
        for (int mode = 0; mode < 4; mode++) {
            struct sw_template_opts o = {.loss = (enum sw_loss_scale)(mode % 3),
                                         .add_generation_prompt = mode == 3,
                                         .rejected = mode == 1 && c->rejected,
                                         .system = mode == 2 ? "" : NULL};
            (void)sw_template_render(sw_template_get(templates[t]), c, &o, &tk, "fuzz", &r);
        }
    sw_template_render_release(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int init;
    if (!init) {
        sw_log_init("fuzz_dataset");
        sw_log_set_level(SW_LOG_ERROR);
        init = 1;
    }
    int fd = memfd_create("fuzz_dataset", 0);
    if (fd < 0) return 0;
    if (size && write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    struct sw_dataset_reader *rd;
    if (sw_dataset_reader_open(&rd, path) == 0) {
        json_t *row;
        long line;
        int rc, rows = 0;
        while (rows < 64 && (rc = sw_dataset_reader_next(rd, &row, &line)) != 0) {
            rows++;
            if (rc < 0) {
                if (!sw_dataset_reader_recoverable(rd)) break;
                continue;
            }
            (void)sw_dataset_detect(row);
            for (int f = SW_DSFMT_ALPACA; f <= SW_DSFMT_TEXT; f++) {
                struct sw_conv c;
                if (sw_dataset_row_to_conv(row, (enum sw_dataset_format)f, "fuzz:1", &c) == 0) {
                    exercise(&c);
                    struct sw_conv copy;
                    if (sw_conv_copy(&copy, &c) == 0) sw_conv_release(&copy);
                    sw_conv_release(&c);
                }
            }
            json_decref(row);
        }
        sw_dataset_reader_free(rd);
    }
    close(fd);
    return 0;
}
