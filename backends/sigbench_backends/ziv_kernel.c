/* The float32 ``accurate`` sigmoid of the PyTorch and JAX backends as one native kernel: Ziv's strategy
 * with the float64 fast path of ziv.py (its constants and error bound, see there), vectorised by hand with
 * AVX2 and FMA (by the compiler elsewhere), over blocks spread on OpenMP threads, and an exact path in long
 * double for the inputs whose fast value lies within the bound of a float32 rounding midpoint (about 1 in
 * 2^18.5).
 *
 * Built at first use by native.py with the system's C compiler (-O3 -march=native -fopenmp). The compiler
 * may contract a * b + c into one fused multiply-add: that only removes roundings from the budget of
 * ziv.py. Each thread runs with subnormals kept (no flush-to-zero), whatever its caller had set, so a
 * subnormal result is rounded like any other.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <omp.h>
#ifdef __SSE__
#include <xmmintrin.h>
#endif

#define BLOCK 4096

static const double INVLN2 = 1.4426950408889634;
static const double LN2_HI = 6.93147180369123816490e-01;
static const double LN2_LO = 1.90821492927058770002e-10;
static const double SHIFT = 6755399441055744.0;
static const int64_t ONE_BITS = 0x3FF0000000000000LL;
static const double CLAMP = 110.0;
static const double REL_BAND = 0x1p-43;
/* e^r on |r| <= ln(2)/2, degree 9: ziv.EXP_COEFFS, the same float64 values. */
static const double EXP_COEFFS[10] = {1.0000000000000127,   0.9999999999998928,    0.4999999999945797,
                                      0.16666666667826954,  0.041666667032463356,  0.008333333002822645,
                                      0.0013888802828821594, 0.0001984159639703441, 2.4884010015388764e-05,
                                      2.748218700193312e-06};

/* The fast path for one input: 1 / (1 + e^-x) in float64 within ziv.py's error bound (no calls, no
 * branches: GCC vectorises the loops that inline it). */
static inline double fast_value(float xf) {
    double y = -(double)xf;
    y = y < -CLAMP ? -CLAMP : y;
    y = y > CLAMP ? CLAMP : y;
    double t = y * INVLN2 + SHIFT; /* t - SHIFT is rint(y / ln 2) */
    double k = t - SHIFT;
    double r = (y - k * LN2_HI) - k * LN2_LO;
    double p = EXP_COEFFS[9]; /* Horner */
    for (int c = 8; c >= 0; c--) {
        p = p * r + EXP_COEFFS[c];
    }
    int64_t bits;
    memcpy(&bits, &t, sizeof bits);
    bits = (int64_t)((uint64_t)bits << 52) + ONE_BITS; /* the bits of 2^k */
    double two_k;
    memcpy(&two_k, &bits, sizeof two_k);
    return 1.0 / (1.0 + p * two_k);
}

/* Whether the float64 value s may round otherwise than the true value: s (1 -+ REL_BAND) round apart.
 * NaN inputs too (NaN != NaN). */
static inline unsigned char is_hard(double s) {
    return (float)(s * (1.0 - REL_BAND)) != (float)(s * (1.0 + REL_BAND));
}

#if defined(__AVX2__) && defined(__FMA__)
/* With AVX2 and FMA, the fast path by hand, CHUNK inputs at a time. GCC's vectorisation of the plain loop
 * below keeps the CPU waiting: each vector's chain of dependent operations (a conversion, the reduction, the
 * 9 steps of Horner, the division, the rounding test) is about 100 cycles long, and the out-of-order window
 * holds only a few such chains. Here every step is taken for 8 vectors (32 inputs) together, so 8
 * independent chains are always in flight: 1.3-1.4x faster on 1 and 2 threads of this 2-core AMD EPYC, the
 * outputs bit for bit the same. The operations are fast_value's, with its a * b + c as the fused
 * multiply-adds GCC makes of them there, so the float64 values are the same. */
#include <immintrin.h>

#define VECTORS 8
#define CHUNK (4 * VECTORS)

static inline void fast_chunk(const float *x, __m256d s[VECTORS]) {
    __m256d y[VECTORS], t[VECTORS], r[VECTORS], p[VECTORS];
    for (int j = 0; j < VECTORS; j++) { /* max/min return their second operand for NaN: y stays NaN */
        y[j] = _mm256_xor_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + 4 * j)), _mm256_set1_pd(-0.0));
        y[j] = _mm256_min_pd(_mm256_set1_pd(CLAMP), _mm256_max_pd(_mm256_set1_pd(-CLAMP), y[j]));
    }
    for (int j = 0; j < VECTORS; j++) {
        t[j] = _mm256_fmadd_pd(y[j], _mm256_set1_pd(INVLN2), _mm256_set1_pd(SHIFT));
    }
    for (int j = 0; j < VECTORS; j++) {
        __m256d k = _mm256_sub_pd(t[j], _mm256_set1_pd(SHIFT));
        r[j] = _mm256_fnmadd_pd(k, _mm256_set1_pd(LN2_LO), _mm256_fnmadd_pd(k, _mm256_set1_pd(LN2_HI), y[j]));
    }
    for (int j = 0; j < VECTORS; j++) {
        p[j] = _mm256_fmadd_pd(_mm256_set1_pd(EXP_COEFFS[9]), r[j], _mm256_set1_pd(EXP_COEFFS[8]));
    }
    for (int c = 7; c >= 0; c--) {
        for (int j = 0; j < VECTORS; j++) {
            p[j] = _mm256_fmadd_pd(p[j], r[j], _mm256_set1_pd(EXP_COEFFS[c]));
        }
    }
    for (int j = 0; j < VECTORS; j++) {
        __m256i two_k = _mm256_add_epi64(_mm256_slli_epi64(_mm256_castpd_si256(t[j]), 52),
                                         _mm256_set1_epi64x(ONE_BITS));
        s[j] = _mm256_div_pd(_mm256_set1_pd(1.0),
                             _mm256_fmadd_pd(p[j], _mm256_castsi256_pd(two_k), _mm256_set1_pd(1.0)));
    }
}

/* The flags of the fast path: bit i % 32 of word i / 32 says whether input i must take the exact path. Bytes
 * per input, spread from each vector's mask, cost the loop 10%. */
typedef uint32_t flags_t;
#define FLAG_WORDS (BLOCK / CHUNK)
#define FLAGGED(flag, i) ((flag)[(i) / CHUNK] >> ((i) % CHUNK) & 1u)

/* The fast path over one block: out[i] = the float64 value rounded to float32, the flags of the inputs the
 * exact path must redo; returns whether there are any. Where s (1 -+ REL_BAND) round alike, (float) s is
 * that value, so out takes the upper one and saves a conversion; the hard ones are overwritten. */
static unsigned char fast_block(const float *restrict x, float *restrict out, flags_t *restrict flag, int64_t n) {
    const __m256d below = _mm256_set1_pd(1.0 - REL_BAND), above = _mm256_set1_pd(1.0 + REL_BAND);
    flags_t any = 0;
    int64_t i = 0;
    for (; i + CHUNK <= n; i += CHUNK) {
        __m256d s[VECTORS];
        fast_chunk(x + i, s);
        flags_t hard = 0;
        for (int j = 0; j < VECTORS; j++) {
            __m128 up = _mm256_cvtpd_ps(_mm256_mul_pd(s[j], above));
            __m128 down = _mm256_cvtpd_ps(_mm256_mul_pd(s[j], below));
            _mm_storeu_ps(out + i + 4 * j, up);
            hard |= (flags_t)_mm_movemask_ps(_mm_cmp_ps(up, down, _CMP_NEQ_UQ)) << (4 * j); /* NaN: unordered */
        }
        flag[i / CHUNK] = hard;
        any |= hard;
    }
    if (i < n) { /* the rest of a last, partial block */
        flags_t hard = 0;
        for (int64_t q = 0; i + q < n; q++) {
            double s = fast_value(x[i + q]);
            out[i + q] = (float)s;
            hard |= (flags_t)is_hard(s) << q;
        }
        flag[i / CHUNK] = hard;
        any |= hard;
    }
    return any != 0;
}

/* For tests of the error bound: the float64 value before rounding, and the flag, of each input (by the
 * same code as fast_block, chunks then the rest). */
void sigbench_ziv_f32_fast_path(const float *x, double *wide, unsigned char *flag, int64_t n) {
    int64_t i = 0;
    for (; i + CHUNK <= n; i += CHUNK) {
        __m256d s[VECTORS];
        fast_chunk(x + i, s);
        for (int j = 0; j < VECTORS; j++) {
            _mm256_storeu_pd(wide + i + 4 * j, s[j]);
        }
    }
    for (; i < n; i++) {
        wide[i] = fast_value(x[i]);
    }
    for (i = 0; i < n; i++) {
        flag[i] = is_hard(wide[i]);
    }
}
#else
/* The flags of the fast path: a byte per input, which GCC's vectorisation of the loop below writes best. */
typedef unsigned char flags_t;
#define FLAG_WORDS BLOCK
#define FLAGGED(flag, i) ((flag)[i])

/* The fast path over one block: out[i] = the float64 value rounded to float32, flag[i] = whether the exact
 * path must redo it; returns whether any must (an OR: counting them here costs the loop 10%). */
static unsigned char fast_block(const float *restrict x, float *restrict out, flags_t *restrict flag, int64_t n) {
    unsigned char any = 0;
    for (int64_t i = 0; i < n; i++) {
        double s = fast_value(x[i]);
        out[i] = (float)s;
        flag[i] = is_hard(s);
        any |= flag[i];
    }
    return any;
}

/* For tests of the error bound: the float64 value before rounding, and the flag, of each input. */
void sigbench_ziv_f32_fast_path(const float *x, double *wide, unsigned char *flag, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        wide[i] = fast_value(x[i]);
        flag[i] = is_hard(wide[i]);
    }
}
#endif

/* Near 0, sigmoid(x) = 1/2 + x/4 - x^3/48 + ...: 1/2 + x/4 is exact in long double for |x| >= 2^-60 (and
 * below that every result rounds to 1/2 anyway). Where it is a float32 rounding midpoint (x = 3 2^-23, for
 * one), the x^3 term, far below long double's precision, decides: the result lies just below the midpoint
 * for x > 0 and just above it for x < 0. Elsewhere that term is too small to cross a midpoint when
 * |x| < 2^-12: 1/2 + x/4 lies on a grid of x's ULP / 4, at least x^3 / 48 away from any midpoint. */
static float near_half(float xf) {
    long double x = xf, head = 0.5L + x / 4;
    float rounded = (float)head;
    long double error = head - rounded;
    if (error == 0) {
        return rounded;
    }
    float other = nextafterf(rounded, error > 0 ? 1.0f : 0.0f);
    if (2 * fabsl(error) != fabsl((long double)other - rounded)) {
        return rounded; /* not a midpoint */
    }
    return xf > 0 ? fminf(rounded, other) : fmaxf(rounded, other);
}

/* The exact path for one input: 1 / (1 + e^-x) in long double (64-bit significand on x86), rounded once;
 * near 0, near_half. Correctly rounded on every float32 input (the exhaustive run checks it). */
static float exact(float xf) {
    long double x = xf;
    if (fabsl(x) < 0x1p-12L) {
        return near_half(xf);
    }
    if (x >= 0) {
        return (float)(1.0L / (1.0L + expl(-x)));
    }
    long double z = expl(x);
    return (float)(z / (1.0L + z));
}

static int64_t one_block(const float *x, float *out, int64_t n) {
    flags_t flag[FLAG_WORDS];
    int64_t hard = 0;
    if (!fast_block(x, out, flag, n)) {
        return 0;
    }
    for (int64_t i = 0; i < n; i++) { /* about 1 block in 90 */
        if (FLAGGED(flag, i)) {
            out[i] = exact(x[i]);
            hard++;
        }
    }
    return hard;
}

/* Blocks [first, last) on the calling thread, with subnormals kept (no flush-to-zero, no denormals-are-zero)
 * whatever the thread had set: XLA's threads flush them. */
static int64_t run_blocks(const float *x, float *out, int64_t n, int64_t first, int64_t last) {
#ifdef __SSE__
    unsigned int csr = _mm_getcsr();
    _mm_setcsr(csr & ~0x8040u); /* FTZ is bit 15, DAZ bit 6 */
#endif
    int64_t hard = 0;
    for (int64_t b = first; b < last; b++) {
        int64_t start = b * BLOCK, len = n - start < BLOCK ? n - start : BLOCK;
        hard += one_block(x + start, out + start, len);
    }
#ifdef __SSE__
    _mm_setcsr(csr);
#endif
    return hard;
}

/* out = sigmoid(x), correctly rounded, for n float32 values on up to `threads` OpenMP threads (one block of
 * BLOCK inputs or fewer runs on the calling thread alone); returns how many inputs took the exact path. */
int64_t sigbench_ziv_f32(const float *x, float *out, int64_t n, int threads) {
    int64_t blocks = (n + BLOCK - 1) / BLOCK, hard = 0;
    if (threads > blocks) {
        threads = (int)blocks;
    }
    if (threads <= 1) {
        return run_blocks(x, out, n, 0, blocks);
    }
#pragma omp parallel num_threads(threads) reduction(+ : hard)
    {
        int64_t team = omp_get_num_threads(), me = omp_get_thread_num();
        hard += run_blocks(x, out, n, blocks * me / team, blocks * (me + 1) / team);
    }
    return hard;
}
