/* sw_json — strict field readers over jansson objects and the one JSON text layout sw writes.
 *
 * Every reader fails with SW_EFORMAT naming the file and the key ("config.json: key 'r' is not an
 * integer"), so parsers of HF/PEFT/trainer JSON files stay short and their errors uniform.
 * Readers borrow the object; nothing is allocated except by sw_json_dump. */
#ifndef SW_JSON_H
#define SW_JSON_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* The value of key in object o, or NULL with SW_EFORMAT ("file: missing key 'key'") in *rc. */
json_t *sw_json_need(json_t *o, const char *key, const char *file, int *rc);
/* Typed readers: 0 with *out set, or SW_EFORMAT naming file and key. get_u64 also accepts a
 * decimal string (64-bit seeds are written that way when they exceed int64); get_real maps JSON
 * null to NaN; get_str copies into out[cap] and fails when the text does not fit. */
int sw_json_get_i64(json_t *o, const char *key, const char *file, int64_t *out);
int sw_json_get_u64(json_t *o, const char *key, const char *file, uint64_t *out);
int sw_json_get_real(json_t *o, const char *key, const char *file, double *out);
int sw_json_get_str(json_t *o, const char *key, const char *file, char *out, size_t cap);
int sw_json_get_obj(json_t *o, const char *key, const char *file, json_t **out);

/* v as text in the layout of the files sw writes (2-space indent, sorted keys, reals with 17
 * significant digits, a final newline); malloc'ed, NULL when out of memory. */
char *sw_json_dump(const json_t *v);

#endif
