/* sw_quant_hf — quantized HF folders (layouts and formulas: sw_quant_hf.h).
 *
 * The decoder's linear weights go through the packers below one tensor at a time; everything
 * else passes through as a borrowed view of the input mapping. The writer borrows tensor data
 * until it writes, so the packed buffers are kept in a list and freed after the write. */
#include "sw_quant_hf.h"

#include "sw_qfolder.h"

#include "sw_dtype.h"
#include "sw_err.h"
#include "sw_hfmodel.h"
#include "sw_io.h"
#include "sw_log.h"
#include "sw_qformat.h"
#include "sw_safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int sw_gptq_pack(const float *w, int64_t out, int64_t in, int bits, int64_t g, int sym,
                 int32_t *qweight, int32_t *qzeros, uint16_t *scales, int32_t *g_idx) {
    if (bits != 4 && bits != 8)
        return sw_err_set(SW_EINVAL, "GPTQ bits must be 4 or 8, not %d", bits);
    int pf = 32 / bits;
    uint32_t maxq = (1u << bits) - 1;
    if (g <= 0 || in % g != 0)
        return sw_err_set(SW_EINVAL, "rows of %lld are not divisible by the group size %lld",
                          (long long)in, (long long)g);
    if (in % pf != 0 || out % pf != 0)
        return sw_err_set(SW_EINVAL,
                          "shape [%lld, %lld]: both dimensions must be multiples of %d "
                          "to pack %d-bit values into int32",
                          (long long)out, (long long)in, pf, bits);
    int64_t ng = in / g;
    uint8_t *zeros = malloc((size_t)(ng * out));
    if (!zeros) return sw_err_set(SW_ENOMEM, "out of memory");
    memset(qweight, 0, (size_t)(in / pf * out) * sizeof *qweight);
    memset(qzeros, 0, (size_t)(ng * out / pf) * sizeof *qzeros);
#pragma omp parallel for schedule(static) if (out * in > 65536)
    for (int64_t j = 0; j < out; j++) {
        const float *row = w + j * in;
        for (int64_t gi = 0; gi < ng; gi++) {
            const float *x = row + gi * g;
            float mn = 0, mx = 0;
            for (int64_t i = 0; i < g; i++)
                mn = fminf(mn, x[i]), mx = fmaxf(mx, x[i]);
            if (sym) mx = fmaxf(-mn, mx), mn = -mx;
            if (mn == 0 && mx == 0) mn = -1, mx = 1;
            float scale = (mx - mn) / (float)maxq;
            uint16_t s16 = sw_f32_to_f16(scale);
            float s = sw_f16_to_f32(s16);
            if (!(s > 0)) s16 = 1, s = sw_f16_to_f32(1); /* below the smallest half */
            int zero;
            if (sym)
                zero = (int)((maxq + 1) / 2);
            else {
                zero = (int)nearbyintf(-mn / s);
                zero = zero < 1 ? 1 : zero > (int)maxq ? (int)maxq : zero;
            }
            scales[gi * out + j] = s16;
            zeros[gi * out + j] = (uint8_t)zero;
            for (int64_t i = 0; i < g; i++) {
                float q = nearbyintf(x[i] / s) + (float)zero;
                uint32_t qi = q < 0 ? 0 : q > (float)maxq ? maxq : (uint32_t)q;
                int64_t r = gi * g + i;
                ((uint32_t *)qweight)[(r / pf) * out + j] |= qi << ((r % pf) * bits);
            }
        }
    }
    for (int64_t gi = 0; gi < ng; gi++)
        for (int64_t j = 0; j < out; j++)
            ((uint32_t *)qzeros)[gi * (out / pf) + j / pf] |=
                ((uint32_t)(zeros[gi * out + j] - 1) & maxq) << ((j % pf) * bits);
    for (int64_t i = 0; i < in; i++)
        g_idx[i] = (int32_t)(i / g);
    free(zeros);
    return 0;
}

void sw_gptq_unpack(const int32_t *qweight, const int32_t *qzeros, const uint16_t *scales,
                    const int32_t *g_idx, int64_t out, int64_t in, int bits, int64_t ngroups,
                    float *w) {
    int pf = 32 / bits;
    uint32_t maxq = (1u << bits) - 1;
    (void)ngroups;
    for (int64_t i = 0; i < in; i++) {
        int64_t gi = g_idx[i];
        for (int64_t j = 0; j < out; j++) {
            uint32_t q = ((uint32_t)qweight[(i / pf) * out + j] >> ((i % pf) * bits)) & maxq;
            uint32_t z =
                (((uint32_t)qzeros[gi * (out / pf) + j / pf] >> ((j % pf) * bits)) & maxq) + 1;
            w[j * in + i] = sw_f16_to_f32(scales[gi * out + j]) * ((float)q - (float)z);
        }
    }
}

void sw_fp8_quantize(const float *w, int64_t out, int64_t in, int per_tensor, uint8_t *q,
                     float *scale) {
    float gmax = 0;
    if (per_tensor)
        for (int64_t k = 0; k < out * in; k++)
            gmax = fmaxf(gmax, fabsf(w[k]));
#pragma omp parallel for schedule(static) if (out * in > 65536)
    for (int64_t j = 0; j < out; j++) {
        float amax = gmax;
        if (!per_tensor)
            for (int64_t i = 0; i < in; i++)
                amax = fmaxf(amax, fabsf(w[j * in + i]));
        float s = amax > 0 ? amax / 448.0f : 1.0f;
        if (!per_tensor) scale[j] = s;
        for (int64_t i = 0; i < in; i++)
            q[j * in + i] = sw_f32_to_fp8_e4m3_sat(w[j * in + i] / s);
    }
    if (per_tensor) scale[0] = gmax > 0 ? gmax / 448.0f : 1.0f;
}

/* ---- the folder ---- */

struct keep {
    void **p;
    int n, cap;
};

static void *keep(struct keep *k, void *buf) {
    if (!buf) return NULL;
    if (k->n == k->cap) {
        int cap = k->cap ? 2 * k->cap : 64;
        void **np = realloc(k->p, (size_t)cap * sizeof *np);
        if (!np) {
            free(buf);
            return NULL;
        }
        k->p = np, k->cap = cap;
    }
    return k->p[k->n++] = buf;
}

static void keep_release(struct keep *k) {
    for (int i = 0; i < k->n; i++)
        free(k->p[i]);
    free(k->p);
}

/* The decoder linear weights that get quantized. */
static int is_linear(const char *name) {
    static const char *const mods[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                       "self_attn.o_proj", "mlp.gate_proj",    "mlp.up_proj",
                                       "mlp.down_proj"};
    int l, n = 0;
    if (sscanf(name, "model.layers.%d.%n", &l, &n) != 1 || n == 0) return 0;
    for (size_t i = 0; i < sizeof mods / sizeof mods[0]; i++) {
        size_t k = strlen(mods[i]);
        if (!strncmp(name + n, mods[i], k) && !strcmp(name + n + k, ".weight")) return 1;
    }
    return 0;
}

static int add_t(struct sw_st_writer *w, const char *name, enum sw_dtype dt, int nd,
                 const int64_t *shape, void *data) {
    struct sw_tensor t;
    SW_TRY(sw_tensor_init(&t, dt, nd, shape, data));
    return sw_st_writer_add(w, name, &t);
}

static int quant_tensor(const struct sw_hfq_opts *o, const struct sw_st_entry *e,
                        struct sw_st_writer *w, struct keep *k, struct sw_hfq_stats *st) {
    int64_t out = e->shape[0], in = e->shape[1];
    float *x = malloc((size_t)(out * in) * sizeof *x);
    if (!x) return sw_err_set(SW_ENOMEM, "out of memory for '%s'", e->name);
    int rc = sw_dtype_convert(SW_DTYPE_F32, x, e->dtype, e->data, (size_t)(out * in));
    if (rc < 0)
        rc = sw_err_set(SW_EUNSUPPORTED, "tensor '%s': cannot convert %s to float32", e->name,
                        sw_dtype_name(e->dtype));
    for (int64_t i = 0; rc == 0 && i < out * in; i++)
        if (!isfinite(x[i]))
            rc = sw_err_set(SW_EFORMAT, "tensor '%s': element %lld is not finite", e->name,
                            (long long)i);
    char base[256], nm[300];
    size_t bl = strlen(e->name) - strlen(".weight");
    snprintf(base, sizeof base, "%.*s", (int)bl, e->name);
    if (rc == 0 && !strcmp(o->method, "rtn")) {
        int pf = 32 / o->bits;
        int64_t g = o->group_size > 0 ? o->group_size : in;
        if (in % g != 0) {
            rc = sw_err_set(SW_EINVAL,
                            "tensor '%s': rows of %lld are not divisible by the group "
                            "size %lld",
                            e->name, (long long)in, (long long)g);
        } else {
            int64_t ng = in / g;
            int32_t *qw = keep(k, malloc((size_t)(in / pf * out) * 4));
            int32_t *qz = keep(k, malloc((size_t)(ng * out / pf + 1) * 4));
            uint16_t *sc = keep(k, malloc((size_t)(ng * out) * 2));
            int32_t *gi = keep(k, malloc((size_t)in * 4));
            if (!qw || !qz || !sc || !gi) rc = sw_err_set(SW_ENOMEM, "out of memory");
            if (rc == 0) rc = sw_gptq_pack(x, out, in, o->bits, g, o->sym, qw, qz, sc, gi);
            if (rc < 0 && !strstr(sw_err_msg(), e->name))
                rc = sw_err_wrap(rc, "tensor '%s'", e->name);
            int64_t s_qw[2] = {in / pf, out}, s_qz[2] = {ng, out / pf}, s_sc[2] = {ng, out},
                    s_gi[1] = {in};
            if (rc == 0)
                snprintf(nm, sizeof nm, "%s.qweight", base),
                    rc = add_t(w, nm, SW_DTYPE_I32, 2, s_qw, qw);
            if (rc == 0)
                snprintf(nm, sizeof nm, "%s.qzeros", base),
                    rc = add_t(w, nm, SW_DTYPE_I32, 2, s_qz, qz);
            if (rc == 0)
                snprintf(nm, sizeof nm, "%s.scales", base),
                    rc = add_t(w, nm, SW_DTYPE_F16, 2, s_sc, sc);
            if (rc == 0)
                snprintf(nm, sizeof nm, "%s.g_idx", base),
                    rc = add_t(w, nm, SW_DTYPE_I32, 1, s_gi, gi);
            st->bytes_out +=
                (uint64_t)(in / pf * out + ng * out / pf + in) * 4 + (uint64_t)ng * out * 2;
        }
    } else if (rc == 0 && !strcmp(o->method, "nf4")) {
        int64_t n = out * in, nb = (n + 63) / 64, nn = (nb + 255) / 256;
        uint8_t *pk = keep(k, malloc((size_t)(n + 1) / 2));
        uint8_t *qa = keep(k, malloc((size_t)nb));
        float *na = keep(k, malloc((size_t)nn * sizeof(float)));
        float *qm = keep(k, malloc(16 * sizeof(float)));
        float *nqm = keep(k, malloc(256 * sizeof(float)));
        float off = 0;
        if (!pk || !qa || !na || !qm || !nqm) rc = sw_err_set(SW_ENOMEM, "out of memory");
        if (rc == 0) rc = sw_nf4_quantize(x, n, pk, qa, na, &off);
        if (rc == 0) {
            memcpy(qm, sw_nf4_code(), 16 * sizeof(float));
            memcpy(nqm, sw_bnb_dynamic_map(), 256 * sizeof(float));
        }
        /* bitsandbytes' pack_dict_to_tensor: json.dumps of the non-tensor fields, as uint8 */
        char js[512];
        const char *dtn = e->dtype == SW_DTYPE_BF16  ? "bfloat16"
                          : e->dtype == SW_DTYPE_F16 ? "float16"
                                                     : "float32";
        int jn = snprintf(js, sizeof js,
                          "{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"%s\", "
                          "\"shape\": [%lld, %lld], \"nested_blocksize\": 256, \"nested_dtype\": "
                          "\"float32\", \"nested_offset\": %.17g}",
                          dtn, (long long)out, (long long)in, (double)off);
        uint8_t *jb = keep(k, malloc((size_t)jn));
        if (rc == 0 && !jb) rc = sw_err_set(SW_ENOMEM, "out of memory");
        if (rc == 0) memcpy(jb, js, (size_t)jn);
        int64_t s_w[2] = {(n + 1) / 2, 1}, s_a[1] = {nb}, s_na[1] = {nn}, s_qm[1] = {16},
                s_nqm[1] = {256}, s_js[1] = {jn};
        if (rc == 0) rc = add_t(w, e->name, SW_DTYPE_U8, 2, s_w, pk);
        if (rc == 0)
            snprintf(nm, sizeof nm, "%s.absmax", e->name),
                rc = add_t(w, nm, SW_DTYPE_U8, 1, s_a, qa);
        if (rc == 0)
            snprintf(nm, sizeof nm, "%s.quant_map", e->name),
                rc = add_t(w, nm, SW_DTYPE_F32, 1, s_qm, qm);
        if (rc == 0)
            snprintf(nm, sizeof nm, "%s.nested_absmax", e->name),
                rc = add_t(w, nm, SW_DTYPE_F32, 1, s_na, na);
        if (rc == 0)
            snprintf(nm, sizeof nm, "%s.nested_quant_map", e->name),
                rc = add_t(w, nm, SW_DTYPE_F32, 1, s_nqm, nqm);
        if (rc == 0)
            snprintf(nm, sizeof nm, "%s.quant_state.bitsandbytes__nf4", e->name),
                rc = add_t(w, nm, SW_DTYPE_U8, 1, s_js, jb);
        st->bytes_out += (uint64_t)((n + 1) / 2 + nb + nn * 4 + 16 * 4 + 256 * 4 + jn);
    } else if (rc == 0 && !strcmp(o->method, "fp8")) {
        uint8_t *q = keep(k, malloc((size_t)(out * in)));
        int64_t ns = o->per_tensor ? 1 : out;
        float *s = malloc((size_t)ns * sizeof *s);
        enum sw_dtype sdt =
            e->dtype == SW_DTYPE_F32 || e->dtype == SW_DTYPE_BF16 || e->dtype == SW_DTYPE_F16
                ? e->dtype
                : SW_DTYPE_F32;
        void *sconv = keep(k, malloc((size_t)ns * 4));
        if (!q || !s || !sconv) rc = sw_err_set(SW_ENOMEM, "out of memory");
        if (rc == 0) {
            sw_fp8_quantize(x, out, in, o->per_tensor, q, s);
            rc = sw_dtype_convert(sdt, sconv, SW_DTYPE_F32, s, (size_t)ns);
        }
        int64_t s_w[2] = {out, in}, s_s[2] = {out, 1}, s_t[1] = {1};
        if (rc == 0) rc = add_t(w, e->name, SW_DTYPE_F8_E4M3, 2, s_w, q);
        if (rc == 0) {
            snprintf(nm, sizeof nm, "%s.weight_scale", base);
            rc =
                o->per_tensor ? add_t(w, nm, sdt, 1, s_t, sconv) : add_t(w, nm, sdt, 2, s_s, sconv);
        }
        st->bytes_out += (uint64_t)(out * in) + sw_dtype_nbytes(sdt, (uint64_t)ns);
        free(s);
    }
    free(x);
    st->n_quantized++;
    st->bytes_in += e->nbytes;
    return rc;
}

static json_t *quant_config(const struct sw_hfq_opts *o, const char *compute_dtype) {
    if (!strcmp(o->method, "nf4"))
        return json_pack("{s:s, s:b, s:b, s:s, s:s, s:s, s:b, s:b, s:b, s:n, s:f}", "quant_method",
                         "bitsandbytes", "load_in_4bit", 1, "load_in_8bit", 0,
                         "bnb_4bit_quant_type", "nf4", "bnb_4bit_compute_dtype", compute_dtype,
                         "bnb_4bit_quant_storage", "uint8", "bnb_4bit_use_double_quant", 1,
                         "llm_int8_has_fp16_weight", 0, "llm_int8_enable_fp32_cpu_offload", 0,
                         "llm_int8_skip_modules", "llm_int8_threshold", 6.0);
    if (!strcmp(o->method, "rtn"))
        return json_pack(
            "{s:s, s:i, s:I, s:b, s:b, s:s, s:f, s:b, s:b, s:b, s:{s:[s], s:s}}", "quant_method",
            "gptq", "bits", o->bits, "group_size", (json_int_t)o->group_size, "desc_act", 0, "sym",
            o->sym, "checkpoint_format", "gptq", "damp_percent", 0.01, "true_sequential", 1,
            "static_groups", 0, "lm_head", 0, "meta", "quantizer", "sw-quant rtn", "method", "rtn");
    return json_pack(
        "{s:s, s:s, s:s, s:{s:{s:[s], s:{s:i, s:s, s:s, s:b, s:b}, s:{s:i, s:s, s:s, s:b, s:b}}}, "
        "s:[s]}",
        "quant_method", "compressed-tensors", "format", "float-quantized", "quantization_status",
        "compressed", "config_groups", "group_0", "targets", "Linear", "weights", "num_bits", 8,
        "type", "float", "strategy", o->per_tensor ? "tensor" : "channel", "symmetric", 1,
        "dynamic", 0, "input_activations", "num_bits", 8, "type", "float", "strategy", "token",
        "symmetric", 1, "dynamic", 1, "ignore", "lm_head");
}

int sw_quantize_hf(const struct sw_hfq_opts *o, struct sw_hfq_stats *st) {
    memset(st, 0, sizeof *st);
    if (strcmp(o->method, "rtn") && strcmp(o->method, "fp8") && strcmp(o->method, "nf4"))
        return sw_err_set(SW_EUSAGE, "--quant_method %s is not one of rtn, fp8, nf4", o->method);
    if (!strcmp(o->method, "rtn") && o->bits != 4 && o->bits != 8)
        return sw_err_set(SW_EUSAGE, "--quant_method rtn needs --quant_bits 4 or 8");
    if (!strcmp(o->method, "fp8") && o->bits != 8)
        return sw_err_set(SW_EUSAGE, "--quant_method fp8 needs --quant_bits 8");
    if (!strcmp(o->method, "nf4") && o->bits != 4)
        return sw_err_set(SW_EUSAGE, "--quant_method nf4 needs --quant_bits 4");
    if (o->group_size == 0 || o->group_size < -1)
        return sw_err_set(SW_EUSAGE, "--group_size must be positive or -1 (per channel)");
    if (!o->force && access(o->output_dir, F_OK) == 0)
        return sw_err_set(SW_EINVAL, "'%s' exists (use --force to replace it)", o->output_dir);
    struct sw_hfmodel *m = NULL;
    struct sw_st_writer *w = NULL;
    struct keep k = {0};
    int rc = 0;
    SW_TRY_GOTO(rc, sw_hfmodel_open(o->model, &m), out);
    SW_TRY_GOTO(rc, sw_hfmodel_verify(m), out);
    SW_TRY_GOTO(rc, sw_st_writer_new(&w), out);
    for (int i = 0; i < sw_st_set_count(m->weights) && rc == 0; i++) {
        const struct sw_st_entry *e = sw_st_set_get(m->weights, i);
        if (is_linear(e->name) && e->ndim == 2) {
            rc = quant_tensor(o, e, w, &k, st);
        } else {
            struct sw_tensor t;
            sw_st_entry_view(e, &t);
            rc = sw_st_writer_add(w, e->name, &t);
            st->n_kept++;
            st->bytes_in += e->nbytes, st->bytes_out += e->nbytes;
        }
    }
    if (rc < 0) goto out;
    /* bitsandbytes records the dtype it computes in: the model's, bfloat16 for a float32 one */
    const char *dt = m->config.torch_dtype;
    rc = sw_qfolder_write(o->model, o->output_dir, o->force, w,
                          quant_config(o, dt[0] && strcmp(dt, "float32") ? dt : "bfloat16"), NULL);
out:
    sw_st_writer_free(w);
    keep_release(&k);
    sw_hfmodel_close(m);
    return rc;
}
