/* sw_qfolder — the atomic HF folder writer of sw_qfolder.h. */
#include "sw_qfolder.h"

#include "sw_err.h"
#include "sw_io.h"
#include "sw_safetensors.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int copy_file(const char *dir, const char *name, const char *to) {
    char *src = sw_path_join(dir, name), *dst = sw_path_join(to, name);
    struct sw_mmap m = {0};
    int rc = src && dst ? 0 : sw_err_set(SW_ENOMEM, "out of memory");
    if (rc == 0 && access(src, F_OK) == 0) {
        rc = sw_mmap_open(&m, src);
        if (rc == 0) rc = sw_write_file_atomic(dst, m.data, m.len);
        sw_mmap_close(&m);
    }
    free(src), free(dst);
    return rc;
}

static int write_config(const char *src_dir, const char *tmp, json_t *qc, const char *dtype) {
    char *src = sw_path_join(src_dir, "config.json"), *dst = sw_path_join(tmp, "config.json");
    json_error_t jerr;
    json_t *j = src ? json_load_file(src, 0, &jerr) : NULL;
    char *text = NULL;
    int rc = src && dst ? 0 : sw_err_set(SW_ENOMEM, "out of memory");
    if (rc == 0 && !json_is_object(j))
        rc = sw_err_set(SW_EFORMAT, "%s:%d: %s", src, jerr.line, j ? "not an object" : jerr.text);
    if (rc == 0) {
        if (qc)
            json_object_set(j, "quantization_config", qc);
        else
            json_object_del(j, "quantization_config");
        for (int k = 0; dtype && k < 2; k++) {
            const char *key = k ? "dtype" : "torch_dtype";
            if (json_object_get(j, key)) json_object_set_new(j, key, json_string(dtype));
        }
        if (!(text = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER)))
            rc = sw_err_set(SW_ENOMEM, "out of memory");
    }
    if (rc == 0) rc = sw_write_file_atomic(dst, text, strlen(text));
    json_decref(j);
    free(text), free(src), free(dst);
    return rc;
}

int sw_qfolder_write(const char *src_dir, const char *output_dir, int force, struct sw_st_writer *w,
                     json_t *qc, const char *torch_dtype) {
    static const char *const files[] = {"generation_config.json",
                                        "tokenizer.json",
                                        "tokenizer.json.gz",
                                        "tokenizer_config.json",
                                        "special_tokens_map.json",
                                        "vocab.json",
                                        "merges.txt",
                                        "tokenizer.model",
                                        "added_tokens.json",
                                        "chat_template.jinja"};
    char *tmp = malloc(strlen(output_dir) + 64);
    int rc = tmp ? 0 : sw_err_set(SW_ENOMEM, "out of memory");
    if (rc == 0) {
        sprintf(tmp, "%s.tmp-%ld", output_dir, (long)getpid());
        sw_rm_tree_quiet(tmp);
        if (mkdir(tmp, 0755) != 0) {
            rc = sw_err_errno("cannot create '%s'", tmp);
            free(tmp);
            json_decref(qc);
            return rc;
        }
    }
    if (rc == 0) rc = sw_st_writer_set_metadata(w, "format", "pt");
    if (rc == 0) rc = sw_st_writer_write_sharded(w, tmp, "model", 5000000000ull);
    if (rc == 0) rc = write_config(src_dir, tmp, qc, torch_dtype);
    for (size_t i = 0; rc == 0 && i < sizeof files / sizeof files[0]; i++)
        rc = copy_file(src_dir, files[i], tmp);
    if (rc == 0 && force) sw_rm_tree_quiet(output_dir);
    if (rc == 0 && rename(tmp, output_dir) != 0)
        rc = sw_err_errno("cannot rename '%s' to '%s'", tmp, output_dir);
    if (rc < 0 && tmp) {
        char msg[1024];
        int keep_rc = rc;
        snprintf(msg, sizeof msg, "%s", sw_err_msg());
        sw_rm_tree_quiet(tmp);
        rc = sw_err_set(keep_rc, "%s", msg);
    }
    json_decref(qc);
    free(tmp);
    return rc;
}
