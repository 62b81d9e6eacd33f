/* sw_gguf_types — the ggml tensor type table (names, elements per block, bytes per block) and
 * the GGUF value types. The numbers are ggml's (ggml.c type_traits; gguf-py GGML_QUANT_SIZES);
 * QK_K = 256 for the K-quants and the IQ types. */
#include "sw_gguf.h"

#include <strings.h>

struct type_info {
    const char *name;
    int64_t blck;
    size_t size;
    int quantized;
};

static const struct type_info types[SW_GGML_TYPE_COUNT] = {
    [SW_GGML_F32] = {"F32", 1, 4, 0},
    [SW_GGML_F16] = {"F16", 1, 2, 0},
    [SW_GGML_Q4_0] = {"Q4_0", 32, 2 + 16, 1},
    [SW_GGML_Q4_1] = {"Q4_1", 32, 2 + 2 + 16, 1},
    [SW_GGML_Q5_0] = {"Q5_0", 32, 2 + 4 + 16, 1},
    [SW_GGML_Q5_1] = {"Q5_1", 32, 2 + 2 + 4 + 16, 1},
    [SW_GGML_Q8_0] = {"Q8_0", 32, 2 + 32, 1},
    [SW_GGML_Q8_1] = {"Q8_1", 32, 4 + 4 + 32, 1},
    [SW_GGML_Q2_K] = {"Q2_K", 256, 2 + 2 + 16 + 64, 1},
    [SW_GGML_Q3_K] = {"Q3_K", 256, 2 + 64 + 32 + 12, 1},
    [SW_GGML_Q4_K] = {"Q4_K", 256, 2 + 2 + 128 + 12, 1},
    [SW_GGML_Q5_K] = {"Q5_K", 256, 2 + 2 + 128 + 32 + 12, 1},
    [SW_GGML_Q6_K] = {"Q6_K", 256, 2 + 128 + 64 + 16, 1},
    [SW_GGML_Q8_K] = {"Q8_K", 256, 4 + 256 + 32, 1},
    [SW_GGML_IQ2_XXS] = {"IQ2_XXS", 256, 2 + 64, 1},
    [SW_GGML_IQ2_XS] = {"IQ2_XS", 256, 2 + 64 + 8, 1},
    [SW_GGML_IQ3_XXS] = {"IQ3_XXS", 256, 2 + 64 + 32, 1},
    [SW_GGML_IQ1_S] = {"IQ1_S", 256, 2 + 32 + 16, 1},
    [SW_GGML_IQ4_NL] = {"IQ4_NL", 32, 2 + 16, 1},
    [SW_GGML_IQ3_S] = {"IQ3_S", 256, 2 + 64 + 32 + 8 + 4, 1},
    [SW_GGML_IQ2_S] = {"IQ2_S", 256, 2 + 64 + 16, 1},
    [SW_GGML_IQ4_XS] = {"IQ4_XS", 256, 2 + 2 + 128 + 4, 1},
    [SW_GGML_I8] = {"I8", 1, 1, 0},
    [SW_GGML_I16] = {"I16", 1, 2, 0},
    [SW_GGML_I32] = {"I32", 1, 4, 0},
    [SW_GGML_I64] = {"I64", 1, 8, 0},
    [SW_GGML_F64] = {"F64", 1, 8, 0},
    [SW_GGML_IQ1_M] = {"IQ1_M", 256, 32 + 16 + 8, 1},
    [SW_GGML_BF16] = {"BF16", 1, 2, 0},
    [SW_GGML_TQ1_0] = {"TQ1_0", 256, 2 + 52, 1},
    [SW_GGML_TQ2_0] = {"TQ2_0", 256, 2 + 64, 1},
    [SW_GGML_MXFP4] = {"MXFP4", 32, 1 + 16, 1},
};

static const struct type_info *info(int type) {
    if (type < 0 || type >= SW_GGML_TYPE_COUNT || !types[type].name) return NULL;
    return &types[type];
}

const char *sw_ggml_type_name(int type) {
    const struct type_info *t = info(type);
    return t ? t->name : NULL;
}

int sw_ggml_type_parse(const char *name) {
    for (int i = 0; i < SW_GGML_TYPE_COUNT; i++)
        if (types[i].name && strcasecmp(types[i].name, name) == 0) return i;
    return -1;
}

int64_t sw_ggml_blck_size(int type) {
    const struct type_info *t = info(type);
    return t ? t->blck : 0;
}

size_t sw_ggml_type_size(int type) {
    const struct type_info *t = info(type);
    return t ? t->size : 0;
}

int sw_ggml_is_quantized(int type) {
    const struct type_info *t = info(type);
    return t ? t->quantized : 0;
}

size_t sw_ggml_row_size(int type, int64_t n) {
    const struct type_info *t = info(type);
    if (!t || n < 0 || n % t->blck != 0) return 0;
    return (size_t)(n / t->blck) * t->size;
}

static const char *const vtype_names[SW_GGUF_VTYPE_COUNT] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "str", "arr", "u64", "i64", "f64",
};

const char *sw_gguf_vtype_name(int vtype) {
    return vtype >= 0 && vtype < SW_GGUF_VTYPE_COUNT ? vtype_names[vtype] : "?";
}

size_t sw_gguf_vtype_size(int vtype) {
    switch (vtype) {
    case SW_GGUF_UINT8:
    case SW_GGUF_INT8:
    case SW_GGUF_BOOL: return 1;
    case SW_GGUF_UINT16:
    case SW_GGUF_INT16: return 2;
    case SW_GGUF_UINT32:
    case SW_GGUF_INT32:
    case SW_GGUF_FLOAT32: return 4;
    case SW_GGUF_UINT64:
    case SW_GGUF_INT64:
    case SW_GGUF_FLOAT64: return 8;
    default: return 0;
    }
}
