/* sw-quant inspect — what is in a safetensors file, a shard index or an HF model folder.
 *
 * Everything is validated on the way in (sw_st_set_open checks every header, span and shard),
 * so a file inspect lists is a file the loaders accept. For a folder with config.json the
 * architecture summary and the inventory (the tensors the config implies against the ones
 * present) come first; an inventory mismatch is a warning on stderr, not a failure, because
 * inspect is how one finds out what is wrong. Text output is for people; --json prints one
 * document (schema in tools/quant/README.md) for scripts. */
#include "quant.h"

#include "sw_config.h"
#include "sw_err.h"
#include "sw_hub.h"
#include "sw_hfconfig.h"
#include "sw_hfmodel.h"
#include "sw_io.h"
#include "sw_log.h"
#include "sw_safetensors.h"

#include <errno.h>
#include <jansson.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct inspect_opts {
    int json;
    char *use_hf, *model_revision, *hub_token;
};

/* Whether p is an existing regular file (no error message is set either way). */
static int is_file(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static const struct sw_opt inspect_table[] = {
    {"json", SW_OPT_BOOL, offsetof(struct inspect_opts, json), "false",
     "print one JSON document instead of text", 0, 0, NULL, NULL},
    SW_HUB_OPT_ROWS(struct inspect_opts),
    SW_OPT_END,
};

static const struct sw_cli inspect_cli = {
    .tool = "sw-quant",
    .command = "inspect",
    .usage = "sw-quant inspect [--json] PATH|FILE.gguf|ORG/NAME",
    .summary =
        "Validate and describe PATH: a .safetensors file, a model.safetensors.index.json, an "
        "HF model folder (config.json + weights), a GGUF file, or a hub id (fetched into the "
        "hub cache like sw-fetch, HF_HUB_OFFLINE=1: from the cache). Lists the architecture "
        "(folders) or the metadata (GGUF), the tensors with dtype, shape and bytes, and the "
        "totals.",
    .opts = inspect_table,
    .min_pos = 1,
    .max_pos = 1,
};

struct inspect {
    const char *path;
    struct sw_st_set *set;
    int has_config;
    struct sw_model_config config;
    struct sw_hf_inventory inv;
    int64_t params;
    uint64_t bytes;
};

static const char *base_name(const char *p) {
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

static int64_t entry_numel(const struct sw_st_entry *e) {
    int64_t n = 1;
    for (int i = 0; i < e->ndim; i++)
        n *= e->shape[i];
    return n;
}

static const char *rope_name(enum sw_rope_type t) {
    return t == SW_ROPE_LLAMA3 ? "llama3" : t == SW_ROPE_LINEAR ? "linear" : "default";
}

static const char *arch_name(enum sw_arch a) {
    static const char *const names[] = {"llama", "qwen2", "qwen3", "mistral", "gemma2"};
    return (unsigned)a < sizeof names / sizeof *names ? names[a] : "llama";
}

/* Open the weights and, for a folder holding config.json, the config and inventory. A config
 * of an architecture sw does not know still lets the tensors be listed. */
static int inspect_load(struct inspect *in) {
    int isdir = sw_path_is_dir(in->path);
    if (isdir < 0) return isdir;
    if (isdir) {
        char *cfg = sw_path_join(in->path, "config.json");
        if (!cfg) return sw_err_set(SW_ENOMEM, "out of memory");
        if (is_file(cfg)) {
            int rc = sw_model_config_load(cfg, &in->config);
            if (rc == 0)
                in->has_config = 1;
            else if (rc == SW_EUNSUPPORTED)
                sw_warn("%s; listing tensors only", sw_err_msg());
            else {
                free(cfg);
                return rc;
            }
        }
        free(cfg);
    }
    SW_TRY(sw_st_set_open(in->path, &in->set));
    for (int i = 0; i < sw_st_set_count(in->set); i++) {
        const struct sw_st_entry *e = sw_st_set_get(in->set, i);
        in->params += entry_numel(e);
        in->bytes += e->nbytes;
    }
    if (in->has_config) {
        SW_TRY(sw_hf_inventory_check(&in->config, in->set, &in->inv));
        if (sw_hf_inventory_error(&in->inv, in->path) < 0) sw_warn("%s", sw_err_msg());
        sw_err_clear();
    }
    return 0;
}

static void shape_text(const struct sw_st_entry *e, char *buf, size_t cap) {
    size_t o = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < e->ndim && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%lld", i ? ", " : "", (long long)e->shape[i]);
    if (o < cap) snprintf(buf + o, cap - o, "]");
}

static void print_config(const struct sw_model_config *c, FILE *out) {
    fprintf(out, "architecture:   %s (%s)\n", c->architecture, arch_name(c->arch));
    fprintf(out, "layers:         %lld\n", (long long)c->num_hidden_layers);
    fprintf(out, "hidden:         %lld\n", (long long)c->hidden_size);
    fprintf(out, "heads:          %lld (kv heads %lld, head_dim %lld)\n",
            (long long)c->num_attention_heads, (long long)c->num_key_value_heads,
            (long long)c->head_dim);
    fprintf(out, "intermediate:   %lld\n", (long long)c->intermediate_size);
    fprintf(out, "vocab:          %lld\n", (long long)c->vocab_size);
    fprintf(out, "max_position:   %lld\n", (long long)c->max_position_embeddings);
    fprintf(out, "rope:           %s, theta %.10g", rope_name(c->rope_type), c->rope_theta);
    if (c->rope_type != SW_ROPE_DEFAULT) fprintf(out, ", factor %g", c->rope_factor);
    if (c->rope_type == SW_ROPE_LLAMA3)
        fprintf(out, ", low_freq_factor %g, high_freq_factor %g, original_max_position %lld",
                c->rope_low_freq_factor, c->rope_high_freq_factor,
                (long long)c->rope_original_max_position);
    fprintf(out, "\n");
    fprintf(out, "rms_norm_eps:   %g\n", c->rms_norm_eps);
    fprintf(out, "tie_embeddings: %s\n", c->tie_word_embeddings ? "yes" : "no");
    fprintf(out, "biases:         attention %s, mlp %s%s\n", c->attention_bias ? "yes" : "no",
            c->mlp_bias ? "yes" : "no", c->qk_norm ? "; q/k norm" : "");
    fprintf(out, "dtype:          %s\n", c->torch_dtype[0] ? c->torch_dtype : "(not set)");
    fprintf(out, "config_params:  %lld\n", (long long)sw_model_config_num_params(c));
}

static void print_text(const struct inspect *in, FILE *out) {
    int nf = sw_st_set_nfiles(in->set);
    fprintf(out, "path:           %s\n", in->path);
    fprintf(out, "files:          %d", nf);
    for (int i = 0; i < nf; i++)
        fprintf(out, "%s%s", i ? ", " : " (", base_name(sw_st_path(sw_st_set_file(in->set, i))));
    fprintf(out, "%s\n", nf ? ")" : "");
    if (nf > 0) {
        const struct sw_st_file *f0 = sw_st_set_file(in->set, 0);
        for (int i = 0; i < sw_st_metadata_count(f0); i++) {
            const char *k, *v;
            if (sw_st_metadata_get(f0, i, &k, &v) == 0)
                fprintf(out, "%s%s=%s", i ? ", " : "metadata:       ", k, v);
            if (i + 1 == sw_st_metadata_count(f0)) fprintf(out, "\n");
        }
    }
    if (in->has_config) {
        print_config(&in->config, out);
        if (in->inv.n_issues == 0) {
            fprintf(out, "inventory:      ok (%d tensors as config.json implies)\n",
                    in->inv.n_matched);
        } else {
            fprintf(out, "inventory:      %d issue%s\n", in->inv.n_issues,
                    in->inv.n_issues == 1 ? "" : "s");
            for (int i = 0; i < in->inv.n_issues; i++) {
                char line[512];
                fprintf(out, "  %s\n", sw_hf_issue_str(&in->inv.issues[i], line, sizeof line));
            }
        }
    }
    int n = sw_st_set_count(in->set);
    int wname = 4, wshape = 5;
    for (int i = 0; i < n; i++) {
        const struct sw_st_entry *e = sw_st_set_get(in->set, i);
        char sb[256];
        shape_text(e, sb, sizeof sb);
        if ((int)strlen(e->name) > wname) wname = (int)strlen(e->name);
        if ((int)strlen(sb) > wshape) wshape = (int)strlen(sb);
    }
    fprintf(out, "\n%-*s  %-7s  %-*s  %12s%s\n", wname, "NAME", "DTYPE", wshape, "SHAPE", "BYTES",
            nf > 1 ? "  FILE" : "");
    for (int i = 0; i < n; i++) {
        const struct sw_st_entry *e = sw_st_set_get(in->set, i);
        char sb[256];
        shape_text(e, sb, sizeof sb);
        fprintf(out, "%-*s  %-7s  %-*s  %12zu", wname, e->name, sw_st_dtype_name(e->dtype), wshape,
                sb, e->nbytes);
        if (nf > 1) {
            for (int f = 0; f < nf; f++)
                if (sw_st_find(sw_st_set_file(in->set, f), e->name) == e)
                    fprintf(out, "  %s", base_name(sw_st_path(sw_st_set_file(in->set, f))));
        }
        fprintf(out, "\n");
    }
    fprintf(out, "\ntotal: %d tensors, %lld parameters, %llu bytes\n", n, (long long)in->params,
            (unsigned long long)in->bytes);
}

/* ---- JSON ----------------------------------------------------------------------------------- */

static json_t *config_json(const struct sw_model_config *c) {
    json_t *eos = json_array();
    for (int i = 0; i < c->n_eos; i++)
        json_array_append_new(eos, json_integer(c->eos_token_ids[i]));
    json_t *rope = json_pack("{s:s, s:f}", "type", rope_name(c->rope_type), "theta", c->rope_theta);
    if (c->rope_type != SW_ROPE_DEFAULT)
        json_object_set_new(rope, "factor", json_real(c->rope_factor));
    if (c->rope_type == SW_ROPE_LLAMA3) {
        json_object_set_new(rope, "low_freq_factor", json_real(c->rope_low_freq_factor));
        json_object_set_new(rope, "high_freq_factor", json_real(c->rope_high_freq_factor));
        json_object_set_new(rope, "original_max_position_embeddings",
                            json_integer(c->rope_original_max_position));
    }
    json_t *o = json_object();
    json_object_set_new(o, "model_type", json_string(c->model_type));
    json_object_set_new(o, "architecture", json_string(c->architecture));
    json_object_set_new(o, "num_hidden_layers", json_integer(c->num_hidden_layers));
    json_object_set_new(o, "hidden_size", json_integer(c->hidden_size));
    json_object_set_new(o, "num_attention_heads", json_integer(c->num_attention_heads));
    json_object_set_new(o, "num_key_value_heads", json_integer(c->num_key_value_heads));
    json_object_set_new(o, "head_dim", json_integer(c->head_dim));
    json_object_set_new(o, "intermediate_size", json_integer(c->intermediate_size));
    json_object_set_new(o, "vocab_size", json_integer(c->vocab_size));
    json_object_set_new(o, "max_position_embeddings", json_integer(c->max_position_embeddings));
    json_object_set_new(o, "rms_norm_eps", json_real(c->rms_norm_eps));
    json_object_set_new(o, "rope", rope ? rope : json_null());
    json_object_set_new(o, "tie_word_embeddings", json_boolean(c->tie_word_embeddings));
    json_object_set_new(o, "attention_bias", json_boolean(c->attention_bias));
    json_object_set_new(o, "mlp_bias", json_boolean(c->mlp_bias));
    json_object_set_new(o, "qk_norm", json_boolean(c->qk_norm));
    json_object_set_new(o, "dtype", c->torch_dtype[0] ? json_string(c->torch_dtype) : json_null());
    json_object_set_new(o, "bos_token_id",
                        c->bos_token_id >= 0 ? json_integer(c->bos_token_id) : json_null());
    json_object_set_new(o, "eos_token_id", eos);
    json_object_set_new(o, "num_params", json_integer(sw_model_config_num_params(c)));
    return o;
}

static json_t *inventory_json(const struct sw_hf_inventory *inv) {
    static const char *const kinds[] = {"missing", "shape", "dtype", "unexpected"};
    json_t *issues = json_array();
    for (int i = 0; i < inv->n_issues; i++) {
        char line[512];
        json_array_append_new(issues,
                              json_pack("{s:s, s:s, s:s}", "kind", kinds[inv->issues[i].kind],
                                        "name", inv->issues[i].name, "message",
                                        sw_hf_issue_str(&inv->issues[i], line, sizeof line)));
    }
    return json_pack("{s:b, s:i, s:i, s:i, s:o}", "ok", inv->n_issues == 0, "expected",
                     inv->n_expected, "matched", inv->n_matched, "ignored", inv->n_ignored,
                     "issues", issues);
}

static json_t *inspect_json(const struct inspect *in) {
    json_t *files = json_array(), *tensors = json_array();
    int nf = sw_st_set_nfiles(in->set);
    for (int f = 0; f < nf; f++) {
        const struct sw_st_file *sf = sw_st_set_file(in->set, f);
        json_t *meta = json_object();
        uint64_t bytes = 0;
        for (int i = 0; i < sw_st_metadata_count(sf); i++) {
            const char *k, *v;
            if (sw_st_metadata_get(sf, i, &k, &v) == 0)
                json_object_set_new(meta, k, json_string(v));
        }
        for (int i = 0; i < sw_st_count(sf); i++)
            bytes += sw_st_get(sf, i)->nbytes;
        json_array_append_new(files,
                              json_pack("{s:s, s:s, s:i, s:I, s:o}", "path", sw_st_path(sf), "name",
                                        base_name(sw_st_path(sf)), "tensors", sw_st_count(sf),
                                        "bytes", (json_int_t)bytes, "metadata", meta));
        for (int i = 0; i < sw_st_count(sf); i++) {
            const struct sw_st_entry *e = sw_st_get(sf, i);
            json_t *shape = json_array();
            for (int d = 0; d < e->ndim; d++)
                json_array_append_new(shape, json_integer(e->shape[d]));
            json_array_append_new(
                tensors, json_pack("{s:s, s:s, s:o, s:I, s:I, s:s, s:[I, I]}", "name", e->name,
                                   "dtype", sw_st_dtype_name(e->dtype), "shape", shape, "params",
                                   (json_int_t)entry_numel(e), "bytes", (json_int_t)e->nbytes,
                                   "file", base_name(sw_st_path(sf)), "data_offsets",
                                   (json_int_t)e->begin, (json_int_t)e->end));
        }
    }
    json_t *doc = json_object();
    json_object_set_new(doc, "path", json_string(in->path));
    json_object_set_new(doc, "files", files);
    json_object_set_new(doc, "config", in->has_config ? config_json(&in->config) : json_null());
    json_object_set_new(doc, "inventory", in->has_config ? inventory_json(&in->inv) : json_null());
    json_object_set_new(doc, "tensors", tensors);
    json_object_set_new(doc, "total_tensors", json_integer(sw_st_set_count(in->set)));
    json_object_set_new(doc, "total_params", json_integer(in->params));
    json_object_set_new(doc, "total_bytes", json_integer((json_int_t)in->bytes));
    return doc;
}

/* stdout is data: a reader that went away is SW_EPIPE (quiet), any other failure an error.
 * stdio keeps the error flag but not errno, so the caller passes errno as it was right after
 * the last write (set to 0 before the first). */
static int finish_output(FILE *out, int write_errno) {
    if (fflush(out) == 0 && !ferror(out)) return 0;
    if (errno == EPIPE || write_errno == EPIPE) return SW_EPIPE;
    errno = write_errno ? write_errno : errno;
    return sw_err_errno("cannot write the report");
}

/* 1 when path is a regular file starting with the GGUF magic. */
static int is_gguf(const char *path) {
    char magic[4];
    FILE *f = is_file(path) ? fopen(path, "rb") : NULL;
    int yes = f && fread(magic, 1, 4, f) == 4 && memcmp(magic, "GGUF", 4) == 0;
    if (f) fclose(f);
    return yes;
}

int sw_quant_inspect(const char *path, int json, FILE *out) {
    if (is_gguf(path)) return sw_quant_inspect_gguf(path, json, out);
    struct inspect in = {.path = path};
    int rc = inspect_load(&in);
    int write_errno = 0;
    if (rc == 0 && json) {
        json_t *doc = inspect_json(&in);
        errno = 0;
        /* json_dumpf stops at the first failed write; finish_output reports it. */
        if (!doc)
            rc = sw_err_set(SW_ENOMEM, "out of memory");
        else if (json_dumpf(doc, out,
                            JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(15)) == 0)
            fputc('\n', out);
        write_errno = errno;
        json_decref(doc);
    } else if (rc == 0) {
        errno = 0;
        print_text(&in, out);
        write_errno = errno;
    }
    if (rc == 0) rc = finish_output(out, write_errno);
    sw_hf_inventory_release(&in.inv);
    sw_st_set_close(in.set);
    return rc;
}

int sw_quant_inspect_main(int argc, char **argv) {
    struct inspect_opts o;
    char **pos = NULL;
    int npos = 0;
    int rc = sw_cli_parse(&inspect_cli, &o, argc, argv, &pos, &npos);
    if (rc == 1) return 0; /* --help or --version was printed */
    if (rc < 0) return rc;
    /* a hub id (org/name that is no local path) is inspected in its snapshot folder */
    char *path = strdup(pos[0]);
    if (!path)
        rc = sw_err_set(SW_ENOMEM, "no memory");
    else if (sw_hub_looks_like_id(path)) /* else a path: inspect names what is wrong with it */
        rc = sw_hub_resolve_arg(&path, SW_HUB_NEED_MODEL, o.use_hf, o.model_revision, o.hub_token);
    if (rc == 0) rc = sw_quant_inspect(path, o.json, stdout);
    free(path);
    free(pos);
    sw_config_release(inspect_table, &o);
    return rc;
}
