/* sw_qfolder — writing a (quantized or dequantized) HF model folder next to the folder it came
 * from: the tensors of a safetensors writer as model.safetensors (sharded above 5 GB), the source
 * config.json with "quantization_config" set (or removed), and copies of the tokenizer and
 * generation config files, all in a temporary folder that is renamed into place when complete.
 * The one folder writer of lib/quant: round-to-nearest / FP8 / NF4 (sw_quant_hf.c), GPTQ / AWQ
 * (sw_calib_quant.c) and the dequantizer of quantized folders (sw_quant_hfdeq.c). */
#ifndef SW_QFOLDER_H
#define SW_QFOLDER_H

struct sw_st_writer;
struct json_t;

/* w's tensor data is borrowed until this returns. qc: the quantization_config object (the
 * reference is taken, also on error) or NULL to drop the key. torch_dtype: NULL keeps
 * config.json's, else it replaces the "torch_dtype" / "dtype" keys the file has. force replaces
 * an existing output_dir (the caller has refused one without it). Nothing is left behind on
 * error. */
int sw_qfolder_write(const char *src_dir, const char *output_dir, int force, struct sw_st_writer *w,
                     struct json_t *qc, const char *torch_dtype);

#endif
