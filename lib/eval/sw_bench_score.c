/* sw_bench_score — answer extraction and statistics as lm-evaluation-harness computes them:
 *
 *   - RegexFilter: Python re.findall over the response (PCRE2 here; the patterns the tasks use
 *     mean the same in both), group_select picks a match (0 first, -1 last), a tuple of groups
 *     keeps its first non-empty group, the result is stripped; "[invalid]" when nothing matches;
 *   - exact_match (HF evaluate's): every regex of regexes_to_ignore removed (re.sub) from both
 *     prediction and reference, then lower-cased (ignore_case), then string equality;
 *   - mean_stderr = sample standard deviation / sqrt(n); a group's stderr pooled over its
 *     subtasks (pooled_sample_stderr) when it is weighted by size.
 *
 * sw also removes a Qwen3 thinking section (<think>...</think>) before extraction: the harness
 * does not, but a thinking model's scratch numbers would otherwise be taken as its answer. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "sw_bench.h"

#include "sw_err.h"

#include <ctype.h>
#include <math.h>
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

char *sw_bench_strip_thinking(const char *text) {
    const char *o = strstr(text, "<think>");
    if (!o) return strdup(text);
    const char *c = strstr(o, "</think>");
    size_t head = (size_t)(o - text);
    const char *tail = c ? c + 8 : text + strlen(text);
    size_t tl = strlen(tail);
    char *r = malloc(head + tl + 1);
    if (!r) return NULL;
    memcpy(r, text, head);
    memcpy(r + head, tail, tl + 1);
    /* a model may think more than once; strip every section */
    if (strstr(r, "<think>")) {
        char *again = sw_bench_strip_thinking(r);
        free(r);
        return again;
    }
    return r;
}

/* re.findall(pattern, text)[select] with lm-eval's tuple rule; NULL when no match. */
static int findall_select(const char *pattern, const char *text, int select, char **out) {
    *out = NULL;
    int err;
    PCRE2_SIZE eoff;
    pcre2_code *re =
        pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &err, &eoff, NULL);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        return sw_err_set(SW_EINVAL, "regex '%s': %s at offset %zu", pattern, (char *)msg,
                          (size_t)eoff);
    }
    uint32_t ngroups = 0;
    pcre2_pattern_info(re, PCRE2_INFO_CAPTURECOUNT, &ngroups);
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
    if (!md) {
        pcre2_code_free(re);
        return sw_err_set(SW_ENOMEM, "out of memory");
    }
    size_t len = strlen(text), pos = 0;
    /* keep the chosen match's span(s): first, or the last seen */
    PCRE2_SIZE best[2 * 16];
    int found = 0;
    while (pos <= len) {
        int rc = pcre2_match(re, (PCRE2_SPTR)text, len, pos, 0, md, NULL);
        if (rc < 0) break;
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        uint32_t n = ngroups + 1 < 16 ? ngroups + 1 : 16;
        for (uint32_t g = 0; g < n; g++)
            best[2 * g] = ov[2 * g], best[2 * g + 1] = ov[2 * g + 1];
        found = 1;
        if (select == 0) break;
        pos = ov[1] > ov[0] ? ov[1] : ov[1] + 1;
    }
    int rc = 0;
    if (found) {
        /* one group: findall gives that group; several: a tuple, first non-empty; none: all */
        const char *s = NULL;
        size_t sl = 0;
        if (ngroups == 0)
            s = text + best[0], sl = best[1] - best[0];
        else {
            uint32_t n = ngroups < 15 ? ngroups : 15;
            for (uint32_t g = 1; g <= n; g++) {
                if (best[2 * g] == PCRE2_UNSET || best[2 * g + 1] <= best[2 * g]) {
                    if (ngroups == 1) s = text, sl = 0; /* single group: '' kept as is */
                    continue;
                }
                s = text + best[2 * g], sl = best[2 * g + 1] - best[2 * g];
                break;
            }
        }
        if (s && (sl > 0 || ngroups == 1)) {
            sw_bench_strip(&s, &sl);
            *out = strndup(s, sl);
            if (!*out) rc = sw_err_set(SW_ENOMEM, "out of memory");
        }
    }
    pcre2_match_data_free(md);
    pcre2_code_free(re);
    return rc;
}

static int extract(const char *text, const char *pattern, int select, char **out) {
    char *t = sw_bench_strip_thinking(text);
    if (!t) return sw_err_set(SW_ENOMEM, "out of memory");
    int rc = findall_select(pattern, t, select, out);
    free(t);
    if (rc == 0 && !*out) {
        *out = strdup("[invalid]");
        if (!*out) rc = sw_err_set(SW_ENOMEM, "out of memory");
    }
    return rc;
}

int sw_bench_extract_strict(const char *text, const char *pattern, char **out) {
    return extract(text, pattern, 0, out);
}

int sw_bench_extract_flexible(const char *text, char **out) {
    return extract(text, "(-?[$0-9.,]{2,})|(-?[0-9]+)", -1, out);
}

/* re.sub(pattern, "", s) in place semantics into a new string. */
static char *re_remove(const char *pattern, uint32_t opts, const char *s) {
    int err;
    PCRE2_SIZE eoff;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | opts,
                                   &err, &eoff, NULL);
    if (!re) return NULL;
    size_t len = strlen(s);
    PCRE2_SIZE outlen = len + 1;
    char *out = malloc(outlen);
    if (out && pcre2_substitute(re, (PCRE2_SPTR)s, len, 0, PCRE2_SUBSTITUTE_GLOBAL, NULL, NULL,
                                (PCRE2_SPTR) "", 0, (PCRE2_UCHAR *)out, &outlen) < 0) {
        free(out);
        out = NULL;
    }
    pcre2_code_free(re);
    return out;
}

static char *normalize(const char *s) {
    /* regexes_to_ignore of gsm8k: ",", "\$", "(?s).*#### ", "\.$" in that order */
    static const char *const pats[] = {",", "\\$", "(?s).*#### ", "\\.$"};
    char *cur = strdup(s);
    for (size_t i = 0; cur && i < 4; i++) {
        char *n = re_remove(pats[i], 0, cur);
        free(cur);
        cur = n;
    }
    if (cur)
        for (char *p = cur; *p; p++)
            *p = (char)tolower((unsigned char)*p);
    return cur;
}

int sw_bench_gsm8k_match(const char *pred, const char *ref) {
    char *a = normalize(pred), *b = normalize(ref);
    int r = a && b && strcmp(a, b) == 0;
    free(a), free(b);
    return r;
}

void sw_bench_mean_stderr(const double *x, size_t n, double *mean, double *se) {
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += x[i];
    double mu = n ? s / (double)n : NAN;
    if (mean) *mean = mu;
    if (!se) return;
    if (n < 2) {
        *se = NAN;
        return;
    }
    double v = 0;
    for (size_t i = 0; i < n; i++)
        v += (x[i] - mu) * (x[i] - mu);
    *se = sqrt(v / (double)(n - 1)) / sqrt((double)n);
}

double sw_bench_pooled_stderr(const double *se, const double *n, size_t k) {
    double num = 0, tot = 0;
    for (size_t i = 0; i < k; i++)
        num += (n[i] - 1) * se[i] * se[i] * n[i], tot += n[i];
    if (tot - (double)k <= 0) return NAN;
    return sqrt(num / (tot - (double)k) / tot);
}
