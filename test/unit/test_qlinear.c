/* test_qlinear — quantized base weights (lib/core/sw_qformat.h) through the backend and the
 * model:
 *  - the reference dequantizer against lib/quant's independent GPTQ pack/unpack (int4/int8 RTN
 *    give the same W bit for bit) and bitsandbytes' NF4 dequantization (sw_nf4_dequantize);
 *    error bounds of every format; the exact bytes per parameter;
 *  - the backend's dequant / qmatmul_fwd / qmatmul_bwd_dx against matmul_fwd / matmul_bwd_dx
 *    over the dequantized W, for every format (int8 per channel, int8 asymmetric g32, int4
 *    g32, int4 with an act-order g_idx, NF4 with and without double quantization, FP8), in the
 *    decode (M ≤ 8) and the tiled paths, with bias, alpha and beta;
 *  - the model: the tiny golden Llama quantized at load (quant.load_fmt) against the float model
 *    whose linears hold exactly the dequantized weights — logits, loss and every LoRA gradient
 *    (which reach the early layers only through dx = dy·W of the later quantized linears) equal
 *    to float rounding; the quantized model holds no float linear weight. */
#include "sw_kernels.h"
#include "sw_model.h"
#include "sw_qformat.h"
#include "sw_quant_hf.h"

#include "sw_err.h"
#include "sw_rng.h"
#include "sw_safetensors.h"
#include "fixtures.h"
#include "tap.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static struct sw_backend *be;

static void fill(float *x, int64_t n, uint64_t seed, float std) {
    sw_rng_fill_normal_at(seed, 7, 0, x, (size_t)n, 0.0f, std);
}

struct fmt_case {
    const char *name;
    int fmt;
    int64_t group;
    int sym, dq, act_order;
};

static const struct fmt_case cases[] = {
    {"int8 per-channel sym", SW_QFMT_INT8, -1, 1, 0, 0},
    {"int8 g32 asym", SW_QFMT_INT8, 32, 0, 0, 0},
    {"int4 g32 sym", SW_QFMT_INT4, 32, 1, 0, 0},
    {"int4 g32 asym act-order", SW_QFMT_INT4, 32, 0, 0, 1},
    {"nf4 double-quant", SW_QFMT_NF4, 64, 0, 1, 0},
    {"nf4 float absmax", SW_QFMT_NF4, 64, 0, 0, 0},
    {"fp8 per-channel", SW_QFMT_FP8, -1, 1, 0, 0},
};

/* A permutation of the groups of a [rows, cols] int weight (act-order GPTQ: column c's group is
 * g_idx[c], not c / group): the host struct is rebuilt with per-column groups. */
static void apply_act_order(struct sw_qweight *h) {
    h->g_idx = malloc((size_t)h->cols * sizeof(int32_t));
    for (int64_t c = 0; c < h->cols; c++)
        h->g_idx[c] = (int32_t)((c * 7 + 3) % h->cols / h->group);
}

static void test_reference(void) {
    /* int4/int8 RTN = sw-quant's GPTQ packing unpacked by lib/quant (AutoGPTQ's formula). */
    int64_t rows = 40, cols = 256;
    float *w = malloc((size_t)(rows * cols) * 4), *a = malloc((size_t)(rows * cols) * 4),
          *b = malloc((size_t)(rows * cols) * 4);
    fill(w, rows * cols, 11, 0.05f);
    for (int bits = 4; bits <= 8; bits += 4)
        for (int sym = 0; sym <= 1; sym++) {
            int64_t g = bits == 4 ? 128 : cols, ng = cols / g, pf = 32 / bits;
            int32_t *qw = malloc((size_t)(cols / pf * rows) * 4),
                    *qz = malloc((size_t)(ng * rows / pf) * 4);
            uint16_t *sc = malloc((size_t)(ng * rows) * 2);
            int32_t *gi = malloc((size_t)cols * 4);
            struct sw_qweight h;
            int rc = sw_gptq_pack(w, rows, cols, bits, g, sym, qw, qz, sc, gi);
            if (rc == 0)
                rc = sw_qweight_quantize(w, rows, cols, bits == 8 ? SW_QFMT_INT8 : SW_QFMT_INT4, g,
                                         sym, 0, &h);
            if (rc == 0) {
                sw_gptq_unpack(qw, qz, sc, gi, rows, cols, bits, ng, a);
                sw_qweight_dequant_rows(&h, 0, rows, b);
            }
            OK(rc == 0 && memcmp(a, b, (size_t)(rows * cols) * 4) == 0,
               "int%d %s g%lld: dequantized W == GPTQ pack/unpack bit for bit", bits,
               sym ? "sym" : "asym", (long long)g);
            if (rc == 0) {
                size_t want = (size_t)(bits == 8 ? rows * cols : rows * cols / 2) +
                              (size_t)(rows * ng) * 4 * (sym ? 1 : 2);
                IS_INT(sw_qweight_nbytes(&h), want, "int%d %s: %zu bytes", bits,
                       sym ? "sym" : "asym", want);
                sw_qweight_free_host(&h);
            }
            free(qw), free(qz), free(sc), free(gi);
        }
    /* NF4 with double quantization = bitsandbytes' dequantize_4bit over the same packing. */
    {
        int64_t n = rows * cols, nb = (n + 63) / 64;
        uint8_t *pk = malloc((size_t)n / 2), *qa = malloc((size_t)nb);
        float *na = malloc((size_t)(nb + 255) / 256 * 4), off = 0;
        struct sw_qweight h;
        int rc = sw_nf4_quantize(w, n, pk, qa, na, &off);
        if (rc == 0) rc = sw_qweight_quantize(w, rows, cols, SW_QFMT_NF4, 64, 0, 1, &h);
        if (rc == 0) {
            sw_nf4_dequantize(pk, qa, na, off, n, a);
            sw_qweight_dequant_rows(&h, 0, rows, b);
        }
        OK(rc == 0 && memcmp(a, b, (size_t)n * 4) == 0 && memcmp(pk, h.q, (size_t)n / 2) == 0 &&
               memcmp(qa, h.qabsmax, (size_t)nb) == 0,
           "nf4: codes, quantized absmax and dequantized W == sw_nf4_quantize/dequantize");
        double bound = 0;
        for (int64_t i = 0; i < n; i++) {
            double am = 0;
            for (int64_t k = i / 64 * 64; k < i / 64 * 64 + 64; k++)
                am = fmax(am, fabs(w[k]));
            /* half the widest NF4 gap (0.7230 → 1.0: 0.139) of the block absmax, plus the 8-bit
             * absmax's own error */
            bound = fmax(bound, fabs(b[i] - w[i]) / (am * 0.2));
        }
        OK(rc == 0 && bound <= 1.0, "nf4: every error within 0.2·absmax of its block (%.3f)",
           bound);
        if (rc == 0) {
            size_t want = (size_t)n / 2 + 16 * 4 + (size_t)nb + (size_t)(nb + 255) / 256 * 4 + 1024;
            IS_INT(sw_qweight_nbytes(&h), want, "nf4 double-quant: %zu bytes (%.4f per param)",
                   want, (double)want / (double)n);
            sw_qweight_free_host(&h);
        }
        free(pk), free(qa), free(na);
    }
    /* FP8: per-channel scale absmax/448, relative error of E4M3 (3 mantissa bits). */
    {
        struct sw_qweight h;
        int rc = sw_qweight_quantize(w, rows, cols, SW_QFMT_FP8, -1, 1, 0, &h);
        double worst = 0;
        if (rc == 0) {
            sw_qweight_dequant_rows(&h, 0, rows, b);
            for (int64_t i = 0; i < rows * cols; i++)
                if (fabsf(w[i]) > 1e-3f) worst = fmax(worst, fabs(b[i] - w[i]) / fabs(w[i]));
            sw_qweight_free_host(&h);
        }
        OK(rc == 0 && worst <= 1.0 / 16 + 1e-6, "fp8: relative error ≤ 2^-4 (%.4f)", worst);
    }
    struct sw_qweight h;
    OK(sw_qweight_quantize(w, rows, 40, SW_QFMT_INT4, 32, 1, 0, &h) == SW_EINVAL,
       "int4: columns not divisible by the group size refused (%s)", sw_err_msg());
    free(w), free(a), free(b);
}

/* Device copy of a host quantized weight (the CPU backend: the same memory kind). */
static void test_ops(void) {
    const int64_t rows = 72, cols = 128; /* rows: a partial tile of 64 */
    const int64_t Ms[] = {1, 3, 37};
    for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
        const struct fmt_case *fc = &cases[ci];
        float *w = malloc((size_t)(rows * cols) * 4), *wd = malloc((size_t)(rows * cols) * 4),
              *wo = malloc((size_t)(rows * cols) * 4);
        fill(w, rows * cols, 100 + ci, 0.1f);
        struct sw_qweight h;
        int rc = sw_qweight_quantize(w, rows, cols, fc->fmt, fc->group, fc->sym, fc->dq, &h);
        if (!OK(rc == 0, "%s: quantize (%s)", fc->name, rc ? sw_err_msg() : "ok")) continue;
        if (fc->act_order) apply_act_order(&h);
        sw_qweight_dequant_rows(&h, 0, rows, wd);
        rc = be->dequant(be, wo, &h, 0, rows);
        OK(rc == 0 && memcmp(wo, wd, (size_t)(rows * cols) * 4) == 0,
           "%s: dequant op == reference dequantizer", fc->name);
        rc = be->dequant(be, wo, &h, 5, 3);
        OK(rc == 0 && memcmp(wo, wd + 5 * cols, (size_t)(3 * cols) * 4) == 0,
           "%s: dequant of rows [5, 8)", fc->name);
        for (size_t mi = 0; mi < sizeof Ms / sizeof *Ms; mi++) {
            int64_t M = Ms[mi];
            float *x = malloc((size_t)(M * cols) * 4), *bias = malloc((size_t)rows * 4);
            float *y0 = malloc((size_t)(M * rows) * 4), *y1 = malloc((size_t)(M * rows) * 4);
            float *dy = malloc((size_t)(M * rows) * 4);
            float *dx0 = malloc((size_t)(M * cols) * 4), *dx1 = malloc((size_t)(M * cols) * 4);
            fill(x, M * cols, 200 + mi, 1.0f);
            fill(bias, rows, 300, 0.5f);
            fill(y0, M * rows, 400, 1.0f);
            memcpy(y1, y0, (size_t)(M * rows) * 4);
            fill(dy, M * rows, 500, 1.0f);
            fill(dx0, M * cols, 600, 1.0f);
            memcpy(dx1, dx0, (size_t)(M * cols) * 4);
            int r1 = be->matmul_fwd(be, y0, x, wd, bias, M, rows, cols, 0.5f, 1.0f);
            int r2 = be->qmatmul_fwd(be, y1, x, &h, bias, M, 0.5f, 1.0f);
            double e1 = sw_test_rel_err(y1, y0, M * rows);
            OK(r1 == 0 && r2 == 0 && e1 < 1e-5,
               "%s M=%lld: qmatmul_fwd == matmul_fwd(dequant W) with bias, alpha, beta (%.2g)",
               fc->name, (long long)M, e1);
            r1 = be->matmul_fwd(be, y0, x, wd, NULL, M, rows, cols, 1.0f, 0.0f);
            r2 = be->qmatmul_fwd(be, y1, x, &h, NULL, M, 1.0f, 0.0f);
            e1 = sw_test_rel_err(y1, y0, M * rows);
            OK(r1 == 0 && r2 == 0 && e1 < 1e-5, "%s M=%lld: overwrite, no bias (%.2g)", fc->name,
               (long long)M, e1);
            r1 = be->matmul_bwd_dx(be, dx0, dy, wd, M, rows, cols, 1.0f, 1.0f);
            r2 = be->qmatmul_bwd_dx(be, dx1, dy, &h, M, 1.0f, 1.0f);
            double e2 = sw_test_rel_err(dx1, dx0, M * cols);
            OK(r1 == 0 && r2 == 0 && e2 < 1e-5,
               "%s M=%lld: qmatmul_bwd_dx == dy·dequant(W) accumulated (%.2g)", fc->name,
               (long long)M, e2);
            free(x), free(bias), free(y0), free(y1), free(dy), free(dx0), free(dx1);
        }
        sw_qweight_free_host(&h);
        free(w), free(wd), free(wo);
    }
    struct sw_qweight none = {0};
    float y;
    OK(be->qmatmul_fwd(be, &y, &y, &none, NULL, 1, 1.0f, 0.0f) == SW_EINVAL,
       "qmatmul_fwd refuses a descriptor without a format");
}

/* ---- the model ---- */

#define GOLDEN "test/golden/model/llama"

static struct sw_model *load(const struct sw_quant_spec *q) {
    struct sw_model_config c;
    struct sw_st_set *s = NULL;
    struct sw_model *m = NULL;
    int rc = sw_model_config_load(GOLDEN "/config.json", &c);
    if (q) c.quant = *q;
    if (rc == 0) rc = sw_model_new(&c, be, &m);
    if (rc == 0) rc = sw_st_set_open(GOLDEN, &s);
    if (rc == 0) rc = sw_model_load(m, s);
    sw_st_set_close(s);
    if (rc < 0) {
        DIAG("load: %s", sw_err_msg());
        sw_model_free(m);
        return NULL;
    }
    return m;
}

static void test_model(void) {
    const int64_t T = 12;
    int32_t ids[12], labels[12];
    for (int i = 0; i < T; i++)
        ids[i] = labels[i] = (int32_t)((i * 37 + 5) % 97);
    labels[0] = -100;
    struct sw_batch b = {.B = 1, .T = T, .input_ids = ids, .labels = labels};
    struct sw_lora_config lc = {.r = 4, .alpha = 8, .seed = 3};
    for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
        const struct fmt_case *fc = &cases[ci];
        if (fc->act_order) continue; /* a loader never builds one from a float tensor */
        struct sw_quant_spec qs = {
            .load_fmt = fc->fmt, .group_size = fc->group, .sym = fc->sym, .double_quant = fc->dq};
        struct sw_model *mq = load(&qs), *mf = load(NULL);
        if (!OK(mq && mf, "%s: golden llama loads quantized at load", fc->name)) {
            sw_model_free(mq), sw_model_free(mf);
            continue;
        }
        /* mf's linears := dequant of mq's (exactly the weights mq multiplies by). */
        int nq = 0, rc = 0;
        for (int i = 0; i < sw_model_nparams(mq) && rc == 0; i++) {
            struct sw_param *p = sw_model_param(mq, i), *pf = sw_model_param(mf, i);
            if (!p->quant) continue;
            nq++;
            rc = be->dequant(be, pf->value.data, p->quant, 0, p->value.shape[0]);
        }
        struct sw_model_weight_mem wm;
        sw_model_weight_mem(mq, &wm);
        OK(rc == 0 && nq == 14 && wm.n_quant == 14 && wm.fmt == fc->fmt && wm.quant_params > 0 &&
               wm.quant_bytes < (size_t)wm.quant_params * 2,
           "%s: 14 linear weights held quantized, %zu bytes for %lld parameters (%.3f B/param)",
           fc->name, wm.quant_bytes, (long long)wm.quant_params,
           (double)wm.quant_bytes / (double)wm.quant_params);
        int64_t V = sw_model_config_get(mq)->vocab_size;
        float *lq = malloc((size_t)(T * V) * 4), *lf = malloc((size_t)(T * V) * 4);
        struct sw_loss Lq, Lf;
        rc = sw_model_lora_add(mq, &lc);
        if (rc == 0) rc = sw_model_lora_add(mf, &lc);
        /* A nonzero B so the adapters' gradients depend on the whole path. */
        for (int i = 0; i < sw_model_nparams(mq) && rc == 0; i++) {
            struct sw_param *p = sw_model_param(mq, i), *pf = sw_model_param(mf, i);
            if (!p->is_lora) continue;
            fill(p->value.data, sw_tensor_numel(&p->value), 900 + i, 0.05f);
            memcpy(pf->value.data, p->value.data, sw_tensor_nbytes(&p->value));
        }
        if (rc == 0) rc = sw_model_forward(mq, &b, &Lq);
        if (rc == 0) rc = sw_model_logits(mq, lq);
        if (rc == 0) rc = sw_model_backward(mq, 1.0f / (float)Lq.count);
        if (rc == 0) rc = sw_model_forward(mf, &b, &Lf);
        if (rc == 0) rc = sw_model_logits(mf, lf);
        if (rc == 0) rc = sw_model_backward(mf, 1.0f / (float)Lf.count);
        double el = rc == 0 ? sw_test_rel_err(lq, lf, T * V) : 1;
        OK(rc == 0 && el < 1e-5 && fabs(Lq.sum - Lf.sum) < 1e-4 * fabs(Lf.sum),
           "%s: logits and loss == the float model over dequant(W) (%.2g; %s)", fc->name, el,
           rc ? sw_err_msg() : "ok");
        double eg = 0;
        int ng = 0;
        for (int i = 0; i < sw_model_nparams(mq) && rc == 0; i++) {
            struct sw_param *p = sw_model_param(mq, i), *pf = sw_model_param(mf, i);
            if (!p->is_lora) continue;
            ng++;
            eg = fmax(eg, sw_test_rel_err(p->grad.data, pf->grad.data, sw_tensor_numel(&p->value)));
        }
        OK(rc == 0 && ng == 28 && eg < 1e-4,
           "%s: all %d LoRA gradients == the float model's (through dx = dy·W) (%.2g)", fc->name,
           ng, eg);
        free(lq), free(lf);
        sw_model_free(mq), sw_model_free(mf);
    }
    /* A quantized folder's layout loaded into a float model is dequantized (keep 0): checked by
     * test/cli/quant-qlora.bats over sw-quant's folders. An unsupported one is refused. */
    struct sw_model_config c;
    struct sw_model *m = NULL;
    int rc = sw_model_config_load(GOLDEN "/config.json", &c);
    snprintf(c.quant.unsupported, sizeof c.quant.unsupported, "quant_method 'hqq'");
    OK(rc == 0 && sw_model_new(&c, be, &m) == SW_EUNSUPPORTED && strstr(sw_err_msg(), "hqq"),
       "an unsupported quantization_config is refused naming it (%s)", sw_err_msg());
}

int main(void) {
    if (sw_backend_open(SW_DEVICE_CPU, &be) < 0) {
        OK(0, "cpu backend: %s", sw_err_msg());
        return tap_done();
    }
    test_reference();
    test_ops();
    test_model();
    sw_backend_close(be);
    return tap_done();
}
