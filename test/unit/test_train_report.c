/* Unit tests for what a training run reports besides logging.jsonl (issue 10): CRC-32C and its
 * TFRecord mask, the protobuf bytes of a scalar Event, an event file read back record by record
 * with both CRCs checked, SVG charts (ticks, gaps, escaping, "no data"), ms-swift's smoothing,
 * the plots drawn from an HF log_history, --report_to parsing and the HF-style log line.
 * (TensorBoard itself reads sw's event files in test/cli/train.bats when it is installed.) */
#include "sw_err.h"
#include "sw_io.h"
#include "sw_log.h"
#include "sw_plot.h"
#include "sw_tfevents.h"
#include "sw_train_report.h"
#include "tap.h"

#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char root[256];

static void test_crc(void) {
    IS_INT(sw_crc32c(0, "123456789", 9), 0xe3069283u, "CRC-32C check value");
    IS_INT(sw_crc32c(0, "", 0), 0, "empty input");
    /* Incremental = one shot. */
    IS_INT(sw_crc32c(sw_crc32c(0, "1234", 4), "56789", 5), 0xe3069283u, "continued CRC");
    uint32_t c = 0xe3069283u;
    IS_INT(sw_crc32c_mask(c), (uint32_t)(((c >> 15) | (c << 17)) + 0xa282ead8u), "mask formula");
    /* 32 zero bytes: the RFC 3720 (iSCSI) test vector. */
    uint8_t z[32] = {0};
    IS_INT(sw_crc32c(0, z, 32), 0x8a9136aau, "iSCSI vector: 32 zero bytes");
}

static void test_encode(void) {
    uint8_t b[64];
    int n = sw_tfevents_encode(b, sizeof b, 1.0, 2, NULL, "a", 0.5f);
    static const uint8_t want[] = {0x09, 0,    0,   0, 0,   0, 0, 0xf0, 0x3f, /* wall_time 1.0 */
                                   0x10, 0x02,                                /* step 2 */
                                   0x2a, 0x0a,                /* summary, 10 bytes */
                                   0x0a, 0x08,                /* value, 8 bytes */
                                   0x0a, 0x01, 'a',           /* tag "a" */
                                   0x15, 0,    0,   0, 0x3f}; /* simple_value 0.5f */
    OK(n == (int)sizeof want && memcmp(b, want, sizeof want) == 0,
       "scalar Event bytes as protobuf serialises them (%d bytes)", n);
    n = sw_tfevents_encode(b, sizeof b, 0.0, 300, "brain.Event:2", NULL, 0);
    OK(n == 9 + 3 + 2 + 13 && b[9] == 0x10 && b[10] == 0xac && b[11] == 0x02 && b[12] == 0x1a &&
           b[13] == 13 && memcmp(b + 14, "brain.Event:2", 13) == 0,
       "file_version event; step 300 as a two-byte varint");
    OK(sw_tfevents_encode(b, 8, 1.0, 2, NULL, "a", 0.5f) == -1, "too small a buffer is -1");
    uint8_t rec[64 + 16];
    n = sw_tfevents_encode(b, sizeof b, 1.0, 2, NULL, "a", 0.5f);
    sw_tfrecord_frame(rec, b, (size_t)n);
    uint64_t len = 0;
    for (int i = 0; i < 8; i++)
        len |= (uint64_t)rec[i] << (8 * i);
    uint32_t c1 = 0, c2 = 0;
    for (int i = 0; i < 4; i++) {
        c1 |= (uint32_t)rec[8 + i] << (8 * i);
        c2 |= (uint32_t)rec[12 + n + i] << (8 * i);
    }
    OK(len == (uint64_t)n && c1 == sw_crc32c_mask(sw_crc32c(0, rec, 8)) &&
           c2 == sw_crc32c_mask(sw_crc32c(0, b, (size_t)n)) && memcmp(rec + 12, b, (size_t)n) == 0,
       "TFRecord framing: length, masked CRC of the length, data, masked CRC of the data");
}

/* Read every record of an event file back, checking both CRCs; returns the count (-1 on a bad
 * record) and the last record's data in last (cap 256). */
static int read_records(const char *path, uint8_t *last, size_t *last_n) {
    size_t len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    uint8_t buf[4096];
    len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    size_t at = 0;
    int n = 0;
    while (at + 12 <= len) {
        uint64_t l = 0;
        for (int i = 0; i < 8; i++)
            l |= (uint64_t)buf[at + i] << (8 * i);
        if (at + 16 + l > len) return -1;
        uint32_t c1 = 0, c2 = 0;
        for (int i = 0; i < 4; i++) {
            c1 |= (uint32_t)buf[at + 8 + i] << (8 * i);
            c2 |= (uint32_t)buf[at + 12 + l + i] << (8 * i);
        }
        if (c1 != sw_crc32c_mask(sw_crc32c(0, buf + at, 8)) ||
            c2 != sw_crc32c_mask(sw_crc32c(0, buf + at + 12, l)))
            return -1;
        if (l <= 256) memcpy(last, buf + at + 12, l), *last_n = l;
        at += 16 + l;
        n++;
    }
    return at == len ? n : -1;
}

static void test_event_file(void) {
    char dir[300];
    snprintf(dir, sizeof dir, "%s/tb/nested", root);
    struct sw_tfevents *w = NULL;
    IS_INT(sw_tfevents_open(dir, &w), 0, "open creates the folder (%s)", sw_err_msg());
    const char *path = w ? sw_tfevents_path(w) : "";
    OK(strstr(path, "/events.out.tfevents.") != NULL, "torch's file name: %s", path);
    IS_INT(sw_tfevents_scalar(w, "train/loss", 2.5, 5, 1e9), 0, "scalar");
    IS_INT(sw_tfevents_scalar(w, "train/loss", 2.25, 10, 1e9), 0, "scalar");
    char keep[512];
    snprintf(keep, sizeof keep, "%s", path);
    sw_tfevents_close(w);
    uint8_t last[256];
    size_t ln = 0;
    IS_INT(read_records(keep, last, &ln), 3, "version record + 2 scalars, every CRC right");
    uint8_t want[64];
    int n = sw_tfevents_encode(want, sizeof want, 1e9, 10, NULL, "train/loss", 2.25f);
    OK((int)ln == n && memcmp(last, want, ln) == 0, "the last record is the step-10 scalar");
    struct sw_tfevents *w2 = NULL;
    IS_INT(sw_tfevents_open(dir, &w2), 0, "a second writer in the same second");
    OK(w2 && strcmp(sw_tfevents_path(w2), keep) != 0, "gets another file name");
    sw_tfevents_close(w2);
}

static int count(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

static void test_plot(void) {
    double t[32];
    int n = sw_plot_ticks(0.0, 1.0, 5, t, 32);
    OK(n == 6 && t[0] == 0 && fabs(t[5] - 1.0) < 1e-12, "ticks 0, 0.2, .., 1 (%d)", n);
    n = sw_plot_ticks(3.95, 4.13, 6, t, 32);
    OK(n == 4 && fabs(t[0] - 3.95) < 1e-9 && fabs(t[3] - 4.1) < 1e-9, "ticks 3.95 .. 4.1 by 0.05");
    n = sw_plot_ticks(1, 1000, 8, t, 32);
    OK(n >= 4 && n <= 11 && t[0] <= 200, "a wide range gets 1/2/5 x 10^k steps (%d)", n);
    IS_INT(sw_plot_ticks(1, 1, 5, t, 32), 0, "an empty range has no ticks");
    double x[5] = {1, 2, 3, 4, 5}, y[5] = {3, 2, NAN, 1.5, 1};
    struct sw_plot_series s = {"a<b&c", x, y, 5, "#123456", 0, 0};
    char *svg = sw_plot_svg("loss \"x\" <1>", "step", &s, 1);
    OK(svg && strncmp(svg, "<?xml", 5) == 0 && strstr(svg, "</svg>\n"), "an SVG document");
    OK(svg && count(svg, "<polyline") == 2, "a NaN breaks the line into two polylines");
    OK(svg && strstr(svg, "loss &quot;x&quot; &lt;1&gt;") && strstr(svg, "a&lt;b&amp;c"),
       "title and legend XML-escaped");
    free(svg);
    double nx[1] = {NAN}, ny[1] = {1};
    struct sw_plot_series e = {NULL, nx, ny, 1, NULL, 0, 0};
    svg = sw_plot_svg("empty", "step", &e, 1);
    OK(svg && strstr(svg, "no data") && !strstr(svg, "<polyline"), "no finite point: no data");
    free(svg);
    double v[4] = {1, 3, NAN, 5}, o[4];
    sw_plot_smooth(v, o, 4, 0.5);
    OK(o[0] == 1 && o[1] == 2 && isnan(o[2]) && o[3] == 3.5,
       "smoothing as ms-swift: first value kept, NaN passed through");
}

static void test_plots_from_history(void) {
    json_t *h = json_array();
    for (int s = 1; s <= 4; s++)
        json_array_append_new(h, json_pack("{s:i,s:f,s:f,s:f,s:f}", "step", s, "loss",
                                           3.0 - 0.5 * s, "grad_norm", 1.0, "learning_rate",
                                           1e-3 / s, "epoch", 0.25 * s));
    char run[300];
    snprintf(run, sizeof run, "%s/run", root);
    IS_INT(sw_train_report_plots(run, h), 0, "plots without eval rows (%s)", sw_err_msg());
    char p[400];
    static const char *const names[] = {"train_loss", "train_learning_rate", "train_grad_norm"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/images/%s.svg", run, names[i]);
        OK(access(p, F_OK) == 0, "%s.svg written", names[i]);
    }
    snprintf(p, sizeof p, "%s/images/eval_loss.svg", run);
    OK(access(p, F_OK) != 0, "no eval_loss.svg without eval rows");
    json_array_append_new(h,
                          json_pack("{s:i,s:f,s:f}", "step", 4, "eval_loss", 1.25, "epoch", 1.0));
    IS_INT(sw_train_report_plots(run, h), 0, "redrawn with an eval row");
    OK(access(p, F_OK) == 0, "eval_loss.svg once there is one");
    char *svg = NULL;
    size_t n;
    snprintf(p, sizeof p, "%s/images/train_loss.svg", run);
    IS_INT(sw_read_file(p, &svg, &n, 0), 0, "read train_loss.svg");
    OK(svg && count(svg, "<polyline") == 2 && strstr(svg, "smoothed (0.9)"),
       "train_loss: raw and smoothed curves");
    free(svg);
    json_decref(h);
    json_t *empty = json_array();
    snprintf(run, sizeof run, "%s/norun", root);
    IS_INT(sw_train_report_plots(run, empty), 0, "an empty history draws nothing");
    snprintf(p, sizeof p, "%s/images", run);
    OK(access(p, F_OK) != 0, "and makes no images/ folder");
    json_decref(empty);
}

static void test_report_to_and_line(void) {
    int tb = -1;
    IS_INT(sw_train_report_parse("tensorboard", &tb), 0, "tensorboard");
    OK(tb == 1, "event files wanted");
    IS_INT(sw_train_report_parse("none", &tb), 0, "none");
    OK(tb == 0, "no event files");
    IS_INT(sw_train_report_parse("none,all", &tb), 0, "a list");
    OK(tb == 1, "all includes tensorboard");
    IS_INT(sw_train_report_parse("tensorboard,wandb", &tb), SW_EUSAGE, "wandb is refused");
    OK(strstr(sw_err_msg(), "'wandb' is not available in sw") != NULL, "named: %s", sw_err_msg());
    struct sw_train_line l = {
        .loss = 2.34567,
        .grad_norm = 1.23456,
        .learning_rate = 9.5e-5,
        .tokens_per_sec = 1234.56,
        .epoch = 0.25,
        .mem_gib = 0.125,
        .step = 5,
        .max_steps = 100,
        .elapsed = 10,
        .remaining = 190,
    };
    char buf[512];
    sw_train_report_line(buf, sizeof buf, &l);
    IS_STR(buf,
           "{'loss': 2.3457, 'grad_norm': 1.235, 'learning_rate': 9.5e-05, 'tokens_per_sec': "
           "1234.6, 'memory(GiB)': 0.12, 'epoch': 0.25, 'global_step/max_steps': '5/100', "
           "'percentage': '5.00%', 'elapsed_time': '0:10', 'remaining_time': '3:10'}",
           "HF / ms-swift log line");
    l.loss = NAN, l.mem_gib = -1, l.remaining = -1, l.loss_scale = 65536;
    sw_train_report_line(buf, sizeof buf, &l);
    OK(strstr(buf, "'loss': nan") && !strstr(buf, "memory") && strstr(buf, "'loss_scale': 65536") &&
           strstr(buf, "'remaining_time': '?'"),
       "nan loss, no memory, a float16 loss scale and an unknown ETA: %s", buf);
}

int main(void) {
    sw_log_set_level(SW_LOG_ERROR);
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(root, sizeof root, "%s/sw-test-report-XXXXXX", tmp);
    if (!mkdtemp(root)) return 1;
    test_crc();
    test_encode();
    test_event_file();
    test_plot();
    test_plots_from_history();
    test_report_to_and_line();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0) return 1;
    return tap_done();
}
