/* sw-quant — model conversion and quantization over HF folders. This file only dispatches the
 * subcommand; each lives in its own file (inspect.c, ...) and reports errors through sw_err. */
#include "quant.h"

#include "sw_config.h"

int sw_quant_merge_lora_main(int argc, char **argv); /* merge.c */

static const struct sw_cli_command commands[] = {
    {"inspect", sw_quant_inspect_main,
     "describe a .safetensors file, a shard index, an HF model folder or a GGUF file"},
    {"merge-lora", sw_quant_merge_lora_main, "fold a PEFT LoRA adapter into its base model"},
    {"gguf", sw_quant_gguf_main, "export an HF model folder as a GGUF file (f16 .. q4_k_m)"},
    {"quantize", sw_quant_quantize_main,
     "quantized HF folder: GPTQ int4/int8 (rtn, gptq), AWQ int4, FP8 or NF4"},
    {"imatrix", sw_quant_imatrix_main,
     "llama.cpp importance matrix (GGUF) from calibration data, for gguf --imatrix"},
    {"dequant", sw_quant_dequant_main, "write a GGUF file's tensors as float32 safetensors"},
};

int main(int argc, char **argv) {
    static const struct sw_cli_suite suite = {
        "sw-quant", "Model conversion and quantization over Hugging Face model folders.", commands,
        sizeof commands / sizeof commands[0], NULL};
    return sw_cli_main(&suite, argc, argv);
}
