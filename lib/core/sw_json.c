/* sw_json — strict jansson field readers and sw's JSON text layout (see sw_json.h). */
#include "sw_json.h"

#include "sw_err.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

json_t *sw_json_need(json_t *o, const char *key, const char *file, int *rc) {
    json_t *v = json_is_object(o) ? json_object_get(o, key) : NULL;
    if (!v) *rc = sw_err_set(SW_EFORMAT, "%s: missing key '%s'", file, key);
    return v;
}

int sw_json_get_i64(json_t *o, const char *key, const char *file, int64_t *out) {
    int rc = 0;
    json_t *v = sw_json_need(o, key, file, &rc);
    if (!v) return rc;
    if (!json_is_integer(v))
        return sw_err_set(SW_EFORMAT, "%s: key '%s' is not an integer", file, key);
    *out = json_integer_value(v);
    return 0;
}

int sw_json_get_u64(json_t *o, const char *key, const char *file, uint64_t *out) {
    int rc = 0;
    json_t *v = sw_json_need(o, key, file, &rc);
    if (!v) return rc;
    if (json_is_integer(v) && json_integer_value(v) >= 0) {
        *out = (uint64_t)json_integer_value(v);
        return 0;
    }
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        errno = 0;
        unsigned long long x = strtoull(s, &end, 10);
        if (*s >= '0' && *s <= '9' && !*end && errno == 0) {
            *out = x;
            return 0;
        }
    }
    return sw_err_set(SW_EFORMAT, "%s: key '%s' is not an unsigned 64-bit integer", file, key);
}

int sw_json_get_real(json_t *o, const char *key, const char *file, double *out) {
    int rc = 0;
    json_t *v = sw_json_need(o, key, file, &rc);
    if (!v) return rc;
    if (json_is_null(v)) return *out = NAN, 0;
    if (!json_is_number(v))
        return sw_err_set(SW_EFORMAT, "%s: key '%s' is not a number", file, key);
    *out = json_number_value(v);
    return 0;
}

int sw_json_get_str(json_t *o, const char *key, const char *file, char *out, size_t cap) {
    int rc = 0;
    json_t *v = sw_json_need(o, key, file, &rc);
    if (!v) return rc;
    if (!json_is_string(v))
        return sw_err_set(SW_EFORMAT, "%s: key '%s' is not a string", file, key);
    if (json_string_length(v) >= cap)
        return sw_err_set(SW_EFORMAT, "%s: key '%s' is too long", file, key);
    memcpy(out, json_string_value(v), json_string_length(v) + 1);
    return 0;
}

int sw_json_get_obj(json_t *o, const char *key, const char *file, json_t **out) {
    int rc = 0;
    json_t *v = sw_json_need(o, key, file, &rc);
    if (!v) return rc;
    if (!json_is_object(v))
        return sw_err_set(SW_EFORMAT, "%s: key '%s' is not an object", file, key);
    *out = v;
    return 0;
}

char *sw_json_dump(const json_t *v) {
    char *s = json_dumps(v, JSON_INDENT(2) | JSON_SORT_KEYS | JSON_REAL_PRECISION(17));
    if (!s) return NULL;
    size_t n = strlen(s);
    char *t = realloc(s, n + 2);
    if (!t) {
        free(s);
        return NULL;
    }
    t[n] = '\n';
    t[n + 1] = '\0';
    return t;
}
