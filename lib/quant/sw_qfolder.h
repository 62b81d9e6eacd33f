/* sw_qfolder — writing a (quantized or dequantized) HF model folder next to the folder it came
 * from: the tensors of a safetensors writer as model.safetensors (sharded above 5 GB), the source
 * config.json with "quantization_config" set (or removed), and copies of the tokenizer and
 * generation config files, all in a temporary folder that is renamed into place when complete.
 * Used by GPTQ / AWQ (sw_calib_quant.c) and by the dequantizer of GPTQ / AWQ folders
 * (sw_dequant_hf.c). */
#ifndef SW_QFOLDER_H
#define SW_QFOLDER_H

struct sw_st_writer;
struct json_t;

/* w's tensor data is borrowed until this returns. qc: the quantization_config object (the
 * reference is taken, also on error) or NULL to drop the key. force replaces an existing
 * output_dir (the caller has refused one without it). Nothing is left behind on error. */
int sw_qfolder_write(const char *src_dir, const char *output_dir, int force, struct sw_st_writer *w,
                     struct json_t *qc);

#endif
