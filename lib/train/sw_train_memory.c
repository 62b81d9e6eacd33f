/* sw_train_memory — sw-train's memory plan and its out-of-memory reports.
 *
 * Before the first step sw-train prints, on stderr, what the run will hold: the weights (every
 * parameter, float32, except quantized linear weights at their packed size — QLoRA — with a
 * line of their bytes per parameter), the gradients and both AdamW moments (trainable parameters),
 * and the activations — the scratch arena a forward + backward of the largest micro-batch of the
 * data takes (sw_model_scratch_estimate: exact up to 256-byte rounding; with gradient checkpointing
 * the smaller figure), against the memory available when the run started (the backend's
 * mem_info: cudaMemGetInfo on CUDA, MemAvailable on the CPU). At the end it prints the measured
 * peaks (mem_info's peak: the CUDA pool's high-water mark plus cuBLASLt's workspace, or the
 * process's max RSS; and the scratch arena's high-water mark next to the estimate).
 *
 * On a GPU the planned activations are then reserved as the scratch arena (reserve_activations),
 * so the device peak is about the plan plus the op workspaces. (Not on the CPU, where the
 * arena grows on demand and host memory is not checked against the plan.)
 *
 * Out of memory is reported as such: SW_ENOMEM with the category that could not be allocated,
 * the bytes the category needs and what was free, e.g.
 *   out of device memory for the activations (a micro-batch of 8192 tokens needs ~16.2 GiB of
 *   scratch; 79.1 GiB free of 79.6 GiB when training started; try --gradient_checkpointing true
 *   or fewer tokens per micro-batch): model: activations (7340032 floats): cuda backend: ... */
#include "sw_train_impl.h"

#include "sw_err.h"
#include "sw_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *sw_train_fmt_bytes(char *buf, size_t cap, double b) {
    if (b >= 1024.0 * 1024 * 1024)
        snprintf(buf, cap, "%.2f GiB", b / (1024.0 * 1024 * 1024));
    else if (b >= 1024.0 * 1024)
        snprintf(buf, cap, "%.1f MiB", b / (1024.0 * 1024));
    else
        snprintf(buf, cap, "%.0f KiB", b / 1024.0);
    return buf;
}

/* A backend with its own memory (a GPU), not the host's (the CPU backend). */
static int device_memory(const struct sw_trainer *t) {
    return t->be && t->be->device != SW_DEVICE_CPU;
}

/* Free and total memory of the backend's device (0 and 0 when it cannot tell). */
static void mem_now(struct sw_trainer *t, size_t *avail, size_t *total) {
    struct sw_mem_info mi = {0};
    if (t->be->mem_info(t->be, &mi) < 0) sw_err_clear();
    *avail = mi.free;
    *total = mi.total;
}

void sw_train_mem_start(struct sw_trainer *t) {
    mem_now(t, &t->mem.free0, &t->mem.total0);
}

/* Parameters of the model cfg describes (the registry of lib/sw_model.c, counted from the
 * config alone): the weights figure of an out-of-memory report raised while building it. */
static int64_t config_numel(const struct sw_model_config *c) {
    int64_t C = c->hidden_size, F = c->intermediate_size, D = c->head_dim;
    int64_t QD = c->num_attention_heads * D, KD = c->num_key_value_heads * D;
    int qkv_bias = c->attention_bias || c->arch == SW_ARCH_QWEN2;
    int o_bias = c->attention_bias && c->arch != SW_ARCH_QWEN2;
    int qk_norm = c->qk_norm || c->arch == SW_ARCH_QWEN3;
    int64_t layer = C * QD + 2 * C * KD + QD * C + 3 * C * F + 2 * C;
    if (qkv_bias) layer += QD + 2 * KD;
    if (o_bias) layer += C;
    if (qk_norm) layer += 2 * D;
    if (c->arch == SW_ARCH_GEMMA2) layer += 2 * C; /* pre/post feed-forward norms */
    if (c->mlp_bias) layer += 2 * F + C;
    int64_t n = c->vocab_size * C + c->num_hidden_layers * layer + C;
    if (!c->tie_word_embeddings) n += c->vocab_size * C;
    return n;
}

int sw_train_mem_oom(struct sw_trainer *t, int rc, const char *category, size_t need) {
    if (rc != SW_ENOMEM) return rc;
    if (need == 0 && strcmp(category, "weights") == 0)
        need = (size_t)config_numel(&t->cfg) * sizeof(float);
    char a[32], f[32], tot[32], needs[96] = "";
    if (need) {
        if (strcmp(category, "activations") == 0 && t->mem.act_tokens > 0)
            snprintf(needs, sizeof needs, "a micro-batch of %lld tokens needs ~%s of scratch; ",
                     (long long)t->mem.act_tokens, sw_train_fmt_bytes(a, sizeof a, (double)need));
        else
            snprintf(needs, sizeof needs, "%s needed; ",
                     sw_train_fmt_bytes(a, sizeof a, (double)need));
    }
    const char *hint =
        strcmp(category, "activations") == 0
            ? "; try --gradient_checkpointing true or fewer tokens per micro-batch"
        : strcmp(category, "optimizer state") == 0 || strcmp(category, "gradients") == 0
            ? "; LoRA (--tuner_type lora) trains far fewer parameters"
            : "";
    return sw_err_wrap(SW_ENOMEM,
                       "out of %s memory for the %s (%s%s free of %s when training "
                       "started%s)",
                       device_memory(t) ? "device" : "host", category, needs,
                       sw_train_fmt_bytes(f, sizeof f, (double)t->mem.free0),
                       sw_train_fmt_bytes(tot, sizeof tot, (double)t->mem.total0), hint);
}

/* The device and the precision the run resolved to, as words for the plan line:
 * "cpu" | "cuda: <GPU>, bfloat16 (bf16 GEMMs)" | "cuda: <GPU>, float16 (fp16 GEMMs, dynamic
 * loss scale from 65536)". */
static void device_words(struct sw_trainer *t, char *buf, size_t cap) {
    snprintf(buf, cap, "cpu");
    if (!device_memory(t)) return;
    struct sw_device_info info;
    if (t->be->device_info(t->be, &info) < 0) {
        sw_err_clear();
        snprintf(info.name, sizeof info.name, "?");
    }
    char scale[64] = "";
    if (t->fp16)
        snprintf(scale, sizeof scale, ", %s loss scale %s%g",
                 t->scaler.dynamic ? "dynamic" : "fixed", t->scaler.dynamic ? "from " : "",
                 (double)t->scaler.scale);
    snprintf(buf, cap, "%s: %s, %s (%s GEMMs%s)", t->be->name, info.name, t->dtype,
             sw_matmul_precision_name(t->matmul), scale);
}

/* The planned activations (+1/32 for what the estimate misses) as the scratch arena's one chunk
 * before step 1. Without it the first step grows the arena chunk by chunk and the consolidated
 * arena used to end near twice the plan (bench/NOTES.md "Memory plan vs measured"). If the
 * slack does not fit, the plan alone; if that does not either, the activations are what is out
 * of memory. */
static int reserve_activations(struct sw_trainer *t) {
    size_t acts = t->mem.acts, want = acts + acts / 32;
    int rc = t->be->scratch_reserve(t->be, want);
    if (rc == SW_ENOMEM) {
        sw_err_clear();
        rc = t->be->scratch_reserve(t->be, acts);
    }
    return sw_train_mem_oom(t, rc, "activations", acts);
}

int sw_train_mem_plan(struct sw_trainer *t) {
    struct sw_train_mem *mm = &t->mem;
    const struct sw_train_opts *o = t->o;
    struct sw_model_weight_mem wm;
    sw_model_weight_mem(t->m, &wm);
    mm->weights = wm.float_bytes + wm.quant_bytes; /* quantized linears: their packed bytes */
    if (wm.n_quant) {
        char qb[32], fb[32];
        sw_info("quantized base: %d %s linear weights, %lld parameters in %s (%.4f bytes per "
                "parameter; float32 would take %s)",
                wm.n_quant, sw_qfmt_name(wm.fmt), (long long)wm.quant_params,
                sw_train_fmt_bytes(qb, sizeof qb, (double)wm.quant_bytes),
                (double)wm.quant_bytes / (double)(wm.quant_params ? wm.quant_params : 1),
                sw_train_fmt_bytes(fb, sizeof fb, 4.0 * (double)wm.quant_params));
    }
    mm->grads = (size_t)sw_model_numel(t->m, 1) * sizeof(float);
    mm->optim = 2 * mm->grads;
    struct sw_data_shape sh = t->shape;
    if (sh.max_tokens == 0 && t->data.samples && t->data.max_length > 0) {
        /* A stream of samples: at most batch_size samples of max_length tokens each. */
        sh.max_tokens = o->per_device_train_batch_size * t->data.max_length;
        sh.max_seqs = o->per_device_train_batch_size;
    }
    mm->act_tokens = sh.max_tokens;
    mm->acts = sh.max_tokens > 0
                   ? sw_model_scratch_estimate(t->m, sh.max_tokens,
                                               sh.max_seqs > 0 ? sh.max_seqs : 1, sh.padded)
                   : 0;
    char dev[320], w[32], g[32], op[32], ac[32], tot[32], fr[32], all[32];
    device_words(t, dev, sizeof dev);
    size_t total = mm->weights + mm->grads + mm->optim + mm->acts;
    char acts[128];
    if (sh.max_tokens > 0)
        snprintf(acts, sizeof acts, "activations ~%s (micro-batch of %lld tokens%s)",
                 sw_train_fmt_bytes(ac, sizeof ac, (double)mm->acts), (long long)sh.max_tokens,
                 o->gradient_checkpointing ? ", gradient checkpointing" : "");
    else
        snprintf(acts, sizeof acts, "activations unknown (a stream without max_length)");
    sw_info("memory plan (%s): weights %s + gradients %s + optimizer state %s + %s = %s; "
            "%s %s free of %s at start",
            dev, sw_train_fmt_bytes(w, sizeof w, (double)mm->weights),
            sw_train_fmt_bytes(g, sizeof g, (double)mm->grads),
            sw_train_fmt_bytes(op, sizeof op, (double)mm->optim), acts,
            sw_train_fmt_bytes(all, sizeof all, (double)total),
            device_memory(t) ? "device" : "host",
            sw_train_fmt_bytes(fr, sizeof fr, (double)mm->free0),
            sw_train_fmt_bytes(tot, sizeof tot, (double)mm->total0));
    if (!device_memory(t) || mm->acts == 0) return 0;
    /* Weights, gradients and moments are allocated by now: the arena must fit in the rest. */
    size_t avail, dtotal;
    mem_now(t, &avail, &dtotal);
    if (avail > 0 && mm->acts > avail) {
        char a[32], f[32];
        sw_err_set(SW_ENOMEM,
                   "the activations need ~%s of scratch but only %s of device memory "
                   "is left after the weights, gradients and optimizer state",
                   sw_train_fmt_bytes(a, sizeof a, (double)mm->acts),
                   sw_train_fmt_bytes(f, sizeof f, (double)avail));
        return sw_train_mem_oom(t, SW_ENOMEM, "activations", mm->acts);
    }
    return reserve_activations(t);
}

void sw_train_mem_report(struct sw_trainer *t) {
    if (!t->m) return;
    char a[32], b[32], c[32];
    size_t scratch = sw_model_scratch_peak(t->m);
    const char *est = t->mem.acts ? sw_train_fmt_bytes(c, sizeof c, (double)t->mem.acts) : "?";
    struct sw_mem_info mi;
    if (device_memory(t) && t->be->mem_info(t->be, &mi) == 0) {
        sw_info("memory peak: device %s (CUDA pool high-water + cuBLASLt workspace); "
                "activations %s in the scratch arena (planned %s)",
                sw_train_fmt_bytes(a, sizeof a, (double)mi.peak),
                sw_train_fmt_bytes(b, sizeof b, (double)scratch), est);
        return;
    }
    sw_err_clear();
    sw_info("memory peak: %s resident (max RSS); activations %s in the scratch arena "
            "(planned %s)",
            sw_train_fmt_bytes(a, sizeof a, (double)sw_peak_rss_bytes()),
            sw_train_fmt_bytes(b, sizeof b, (double)scratch), est);
}
