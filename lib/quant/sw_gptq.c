/* sw_gptq — GPTQ's fasterquant on one weight matrix (algorithm and reference: sw_gptq.h).
 *
 * The reference processes all rows at once in blocks of columns; the rows never interact (every
 * row is updated with the same inverse-Hessian factor U), so sw runs each row on its own through
 * the same column schedule, in parallel, keeping per row the two copies the reference keeps:
 * the working copy (updated after every column) and the block-start copy (updated after every
 * block) that group parameters are read from. */
#include "sw_gptq.h"

#include "sw_dtype.h"
#include "sw_err.h"
#include "sw_log.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void sw_gptq_result_release(struct sw_gptq_result *r) {
    if (!r) return;
    free(r->q);
    free(r->scales);
    free(r->zeros);
    free(r->g_idx);
    free(r->deq);
    memset(r, 0, sizeof *r);
}

/* In-place lower Cholesky factor of the symmetric n×n matrix a (the upper triangle is left as
 * garbage and then zeroed). Returns 0, or -1 when a is not positive definite. */
static int chol_lower(double *a, int64_t n) {
    for (int64_t j = 0; j < n; j++) {
        double d = a[j * n + j];
        for (int64_t k = 0; k < j; k++)
            d -= a[j * n + k] * a[j * n + k];
        if (!(d > 0) || !isfinite(d)) return -1;
        d = sqrt(d);
        a[j * n + j] = d;
#pragma omp parallel for schedule(static) if (n - j > 256)
        for (int64_t i = j + 1; i < n; i++) {
            double s = a[i * n + j];
            for (int64_t k = 0; k < j; k++)
                s -= a[i * n + k] * a[j * n + k];
            a[i * n + j] = s / d;
        }
    }
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = i + 1; j < n; j++)
            a[i * n + j] = 0;
    return 0;
}

/* h (n×n, damped) → U, the upper Cholesky factor of h⁻¹ (what torch's cholesky,
 * cholesky_inverse, cholesky(upper=True) give), in h, with one factorization: with P the
 * reversal permutation and P·h·P = L·Lᵀ, h = Ũ·Ũᵀ for the upper triangular Ũ = P·L·P, so
 * h⁻¹ = Ũ⁻ᵀ·Ũ⁻¹ and U = Ũ⁻¹ = P·L⁻¹·P (the Cholesky factor is unique). Returns 0, -1 (not
 * positive definite) or -2 (out of memory). */
static int inverse_chol_upper(double *h, int64_t n) {
    double *r = malloc((size_t)(n * n) * sizeof *r);
    if (!r) return -2;
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++)
            r[i * n + j] = h[(n - 1 - i) * n + (n - 1 - j)];
    if (chol_lower(r, n) < 0) {
        free(r);
        return -1;
    }
    /* L⁻¹ by forward substitution, one unit vector per column (contiguous inner loops), written
     * straight into h reversed: U[n−1−i, n−1−c] = L⁻¹[i, c]. */
    for (int64_t i = 0; i < n * n; i++)
        h[i] = 0;
    int bad = 0;
#pragma omp parallel
    {
        double *x = malloc((size_t)n * sizeof *x);
        if (!x) bad = 1;
#pragma omp for schedule(dynamic, 8)
        for (int64_t c = 0; c < n; c++) {
            if (!x) continue;
            for (int64_t i = c; i < n; i++) {
                const double *li = r + i * n;
                double s = i == c ? 1.0 : 0.0;
                for (int64_t k = c; k < i; k++)
                    s -= li[k] * x[k];
                x[i] = s / li[i];
                h[(n - 1 - i) * n + (n - 1 - c)] = x[i];
            }
        }
        free(x);
    }
    free(r);
    return bad ? -2 : 0;
}

/* GPTQ's Quantizer.find_params over x[0..n) (one row of one group). */
static void find_params(const double *x, int64_t n, int sym, int maxq, double *scale,
                        double *zero) {
    double mn = 0, mx = 0;
    for (int64_t i = 0; i < n; i++) {
        mn = x[i] < mn ? x[i] : mn;
        mx = x[i] > mx ? x[i] : mx;
    }
    if (sym) {
        mx = fabs(mn) > mx ? fabs(mn) : mx;
        if (mn < 0) mn = -mx;
    }
    if (mn == 0 && mx == 0) mn = -1, mx = 1;
    *scale = (mx - mn) / maxq;
    if (sym) {
        *zero = (maxq + 1) / 2;
    } else {
        double z = nearbyint(-mn / *scale);
        *zero = z < 1 ? 1 : z > maxq ? maxq : z; /* ≥ 1: see the header */
    }
}

static double quant1(double x, double scale, double zero, int maxq, int *qi) {
    double q = nearbyint(x / scale) + zero;
    q = q < 0 ? 0 : q > maxq ? maxq : q;
    *qi = (int)q;
    return scale * (q - zero);
}

struct diag_ix {
    double d;
    int64_t i;
};

static int cmp_desc(const void *a, const void *b) {
    const struct diag_ix *x = a, *y = b;
    if (x->d != y->d) return x->d > y->d ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i; /* stable */
}

int sw_gptq_quantize(const float *w, int64_t out, int64_t in, const double *H,
                     const struct sw_gptq_opts *o, struct sw_gptq_result *r) {
    memset(r, 0, sizeof *r);
    if (o->bits < 2 || o->bits > 8)
        return sw_err_set(SW_EINVAL, "GPTQ bits must be 2..8, not %d", o->bits);
    int64_t g = o->group_size > 0 ? o->group_size : in;
    if (o->group_size == 0 || o->group_size < -1 || in % g != 0)
        return sw_err_set(SW_EINVAL, "rows of %lld are not divisible by the group size %lld",
                          (long long)in, (long long)o->group_size);
    int64_t bs = o->block_size > 0 ? o->block_size : 128;
    int maxq = (1 << o->bits) - 1;
    int64_t ng = in / g;
    r->out = out, r->in = in, r->ngroups = ng;
    r->q = malloc((size_t)(out * in));
    r->scales = malloc((size_t)(ng * out) * sizeof *r->scales);
    r->zeros = malloc((size_t)(ng * out) * sizeof *r->zeros);
    r->g_idx = malloc((size_t)in * sizeof *r->g_idx);
    r->deq = malloc((size_t)(out * in) * sizeof *r->deq);
    double *U = malloc((size_t)(in * in) * sizeof *U);
    int64_t *perm = malloc((size_t)in * sizeof *perm);
    struct diag_ix *dix = malloc((size_t)in * sizeof *dix);
    unsigned char *dead = calloc((size_t)in, 1);
    int rc = 0;
    if (!r->q || !r->scales || !r->zeros || !r->g_idx || !r->deq || !U || !perm || !dix || !dead) {
        rc = sw_err_set(SW_ENOMEM, "out of memory for GPTQ of a [%lld, %lld] weight",
                        (long long)out, (long long)in);
        goto done;
    }
    for (int64_t i = 0; i < in; i++) {
        double d = H[i * in + i];
        dead[i] = d == 0;
        dix[i].d = dead[i] ? 1 : d;
        dix[i].i = i;
    }
    if (o->desc_act) qsort(dix, (size_t)in, sizeof *dix, cmp_desc);
    for (int64_t p = 0; p < in; p++)
        perm[p] = dix[p].i;
    /* damped, permuted Hessian → U; GPTQModel raises the damping until it factors */
    double mean = 0;
    for (int64_t i = 0; i < in; i++)
        mean += dix[i].d;
    mean /= (double)in;
    double damp = o->damp_percent;
    for (;;) {
        for (int64_t a = 0; a < in; a++)
            for (int64_t b = 0; b < in; b++) {
                int64_t ia = perm[a], ib = perm[b];
                U[a * in + b] =
                    ia == ib ? (dead[ia] ? 1 : H[ia * in + ia]) + damp * mean : H[ia * in + ib];
            }
        int c = inverse_chol_upper(U, in);
        if (c == -2) {
            rc = sw_err_set(SW_ENOMEM, "out of memory");
            goto done;
        }
        if (c == 0) break;
        if (damp + 0.0025 >= 1.0) {
            rc = sw_err_set(SW_ERANGE,
                            "the Hessian is not positive definite even with damp_percent %.4f "
                            "(too little or degenerate calibration data?)",
                            damp);
            goto done;
        }
        damp += 0.0025;
    }
    if (damp != o->damp_percent)
        sw_warn("GPTQ: the Hessian needed damp_percent %.4f (asked %.4f)", damp, o->damp_percent);
    r->damp = damp;
    for (int64_t p = 0; p < in; p++)
        r->g_idx[perm[p]] = (int32_t)(p / g);

#pragma omp parallel
    {
        double *row = malloc((size_t)in * sizeof *row), *blk = malloc((size_t)in * sizeof *blk);
        double *err = malloc((size_t)bs * sizeof *err);
        int bad = !row || !blk || !err;
#pragma omp for schedule(dynamic, 4)
        for (int64_t j = 0; j < out; j++) {
            if (bad) continue;
            const float *wj = w + j * in;
            double scale = 1, zero = 0;
            if (o->group_size < 0) {
                /* one group per row: parameters from the row before dead columns are zeroed */
                for (int64_t i = 0; i < in; i++)
                    row[i] = wj[i];
                find_params(row, in, o->sym, maxq, &scale, &zero);
                r->scales[j] = (float)scale, r->zeros[j] = (int32_t)zero;
            }
            for (int64_t p = 0; p < in; p++)
                row[p] = dead[perm[p]] ? 0.0 : (double)wj[perm[p]];
            for (int64_t i1 = 0; i1 < in; i1 += bs) {
                int64_t i2 = i1 + bs < in ? i1 + bs : in;
                memcpy(blk + i1, row + i1, (size_t)(in - i1) * sizeof *blk);
                for (int64_t i = i1; i < i2; i++) {
                    if (o->group_size > 0 && i % g == 0) {
                        find_params(blk + i, g, o->sym, maxq, &scale, &zero);
                        r->scales[(i / g) * out + j] = (float)scale;
                        r->zeros[(i / g) * out + j] = (int32_t)zero;
                    }
                    int qi;
                    double dq = quant1(row[i], scale, zero, maxq, &qi);
                    r->q[j * in + perm[i]] = (uint8_t)qi;
                    r->deq[j * in + perm[i]] = (float)dq;
                    double e = (row[i] - dq) / U[i * in + i];
                    const double *u = U + i * in;
                    for (int64_t k = i + 1; k < i2; k++)
                        row[k] -= e * u[k];
                    err[i - i1] = e;
                }
                for (int64_t i = i1; i < i2; i++) {
                    double e = err[i - i1];
                    const double *u = U + i * in;
                    for (int64_t k = i2; k < in; k++)
                        row[k] -= e * u[k];
                }
            }
        }
        free(row), free(blk), free(err);
        if (bad) {
#pragma omp atomic write
            rc = SW_ENOMEM;
        }
    }
    if (rc < 0) rc = sw_err_set(SW_ENOMEM, "out of memory");
done:
    free(U), free(perm), free(dix), free(dead);
    if (rc < 0) sw_gptq_result_release(r);
    return rc;
}

int sw_gptq_pack_codes(const struct sw_gptq_result *r, int bits, int32_t *qweight, int32_t *qzeros,
                       uint16_t *scales16) {
    if (bits != 4 && bits != 8)
        return sw_err_set(SW_EINVAL, "GPTQ packing needs 4 or 8 bits, not %d", bits);
    int pf = 32 / bits;
    int64_t out = r->out, in = r->in, ng = r->ngroups;
    if (in % pf || out % pf)
        return sw_err_set(SW_EINVAL,
                          "shape [%lld, %lld]: both dimensions must be multiples of %d to pack "
                          "%d-bit values into int32",
                          (long long)out, (long long)in, pf, bits);
    uint32_t mask = (1u << bits) - 1;
    memset(qweight, 0, (size_t)(in / pf * out) * sizeof *qweight);
    memset(qzeros, 0, (size_t)(ng * out / pf) * sizeof *qzeros);
    for (int64_t i = 0; i < in; i++)
        for (int64_t j = 0; j < out; j++)
            ((uint32_t *)qweight)[(i / pf) * out + j] |= (uint32_t)r->q[j * in + i]
                                                         << ((i % pf) * bits);
    for (int64_t gi = 0; gi < ng; gi++)
        for (int64_t j = 0; j < out; j++) {
            ((uint32_t *)qzeros)[gi * (out / pf) + j / pf] |=
                ((uint32_t)(r->zeros[gi * out + j] - 1) & mask) << ((j % pf) * bits);
            scales16[gi * out + j] = sw_f32_to_f16(r->scales[gi * out + j]);
        }
    return 0;
}

double sw_gptq_output_error(const float *w, const float *wq, int64_t out, int64_t in,
                            const double *H) {
    double total = 0;
#pragma omp parallel for reduction(+ : total) schedule(static)
    for (int64_t j = 0; j < out; j++) {
        double *d = malloc((size_t)in * sizeof *d);
        if (!d) continue;
        for (int64_t i = 0; i < in; i++)
            d[i] = (double)w[j * in + i] - (double)wq[j * in + i];
        double s = 0;
        for (int64_t a = 0; a < in; a++) {
            double t = 0;
            for (int64_t b = 0; b < in; b++)
                t += H[a * in + b] * d[b];
            s += d[a] * t;
        }
        total += s;
        free(d);
    }
    return total;
}
