/* quant.h — the subcommands of sw-quant, each a function taking the arguments after the
 * subcommand word (argv[0] is the word itself) and returning 0 or a negative sw_err with the
 * message set; main.c maps that to the exit status. */
#ifndef SW_QUANT_H
#define SW_QUANT_H

#include <stdio.h>

/* sw-quant inspect PATH [--json]: parse options, then sw_quant_inspect. */
int sw_quant_inspect_main(int argc, char **argv);

/* Describe the safetensors file, index JSON or HF model folder at path on out: the
 * architecture summary from config.json (folders only), the inventory against that config,
 * every tensor, and totals; as one JSON document when json is set. Returns 0, SW_EPIPE when out
 * was closed by its reader, or the error that kept path from being read. */
int sw_quant_inspect(const char *path, int json, FILE *out);

/* The same for a GGUF file (inspect_gguf.c); sw_quant_inspect calls it for files that start
 * with the GGUF magic. */
int sw_quant_inspect_gguf(const char *path, int json, FILE *out);

/* sw-quant gguf: export an HF model folder as a GGUF file (gguf.c). */
int sw_quant_gguf_main(int argc, char **argv);

/* sw-quant quantize: round-to-nearest HF folders (quantize.c). */
int sw_quant_quantize_main(int argc, char **argv);

/* sw-quant imatrix: llama.cpp's importance matrix from calibration data (imatrix.c). */
int sw_quant_imatrix_main(int argc, char **argv);

/* sw-quant dequant FILE.gguf --output FILE.safetensors (dequant.c). */
int sw_quant_dequant_main(int argc, char **argv);

#endif
