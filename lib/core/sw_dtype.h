/* sw_dtype — element types and exact conversions between them.
 *
 * The names are safetensors' dtype strings where safetensors has one. Conversions to 16- and
 * 8-bit floats round to nearest, ties to even; NaN stays NaN (quiet), ±Inf stays ±Inf where the
 * format has infinities. fp8 follows the OCP 8-bit float spec: E4M3 ("fn": no infinities, one
 * NaN pattern per sign, max 448) and E5M2 (IEEE-like, max 57344). Conversions to fp8 are
 * non-saturating, like PyTorch's casts: a finite value past the largest normal becomes NaN for
 * E4M3 and Inf for E5M2; sw_f32_to_fp8_e4m3_sat() clamps instead (what fp8 training scales want).
 * Q4 is packed unsigned 4-bit, two per byte, element 2i in the low nibble. */
#ifndef SW_DTYPE_H
#define SW_DTYPE_H

#include <stddef.h>
#include <stdint.h>

enum sw_dtype {
    SW_DTYPE_F32 = 0,
    SW_DTYPE_F16,
    SW_DTYPE_BF16,
    SW_DTYPE_F8_E4M3,
    SW_DTYPE_F8_E5M2,
    SW_DTYPE_I8,
    SW_DTYPE_U8,
    SW_DTYPE_I16,
    SW_DTYPE_U16,
    SW_DTYPE_I32,
    SW_DTYPE_U32,
    SW_DTYPE_I64,
    SW_DTYPE_U64,
    SW_DTYPE_F64,
    SW_DTYPE_BOOL,
    SW_DTYPE_Q4,
    SW_DTYPE_COUNT
};

/* Bits per element (4 for Q4). */
int sw_dtype_bits(enum sw_dtype dt);
/* Bytes for n elements (rounds Q4 up to whole bytes). */
size_t sw_dtype_nbytes(enum sw_dtype dt, uint64_t n);
/* Canonical name ("F32", "BF16", "F8_E4M3", "Q4", ...). */
const char *sw_dtype_name(enum sw_dtype dt);
/* Parse a name (canonical names; case-insensitive; also "float32", "bfloat16", "fp16", "int32"...).
 * Returns 0 or SW_EFORMAT (no message set: the caller knows the context). */
int sw_dtype_parse(const char *name, enum sw_dtype *out);
int sw_dtype_is_float(enum sw_dtype dt);

/* Scalar conversions. */
uint16_t sw_f32_to_bf16(float f);
float sw_bf16_to_f32(uint16_t h);
uint16_t sw_f32_to_f16(float f);
float sw_f16_to_f32(uint16_t h);
uint8_t sw_f32_to_fp8_e4m3(float f);
uint8_t sw_f32_to_fp8_e4m3_sat(float f);
float sw_fp8_e4m3_to_f32(uint8_t b);
uint8_t sw_f32_to_fp8_e5m2(float f);
float sw_fp8_e5m2_to_f32(uint8_t b);

/* Convert n elements between any two of F32, F16, BF16, F8_E4M3, F8_E5M2, F64 and the integer
 * types (integers convert through double, truncating toward zero and saturating when narrowing
 * from floats). src and dst must not overlap. Returns 0 or SW_EUNSUPPORTED (Q4, BOOL targets).
 * Details: every float result is rounded once (wide sources round to odd first, so F64/I64/U64
 * to a 16- or 8-bit float is not double-rounded); E4M3 targets are non-saturating as above;
 * float to integer maps NaN to 0; integer to integer is exact and clamps to the target's range;
 * BOOL sources read nonzero as 1; same-dtype conversions (Q4 and BOOL included) copy bytes.
 * Large n (> 65536) runs on OpenMP threads. */
int sw_dtype_convert(enum sw_dtype dst_dt, void *dst, enum sw_dtype src_dt, const void *src,
                     size_t n);

#endif
