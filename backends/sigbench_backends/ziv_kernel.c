/* The float32 ``accurate`` sigmoid of the PyTorch and JAX backends as one native kernel: Ziv's strategy
 * with the float64 fast path of ziv.py (its constants and error bound, see there), over blocks spread on
 * OpenMP threads, and an exact path in long double for the inputs whose fast value lies within the bound of
 * a float32 rounding midpoint (about 1 in 2^18.5).
 *
 * The fast path has three versions, chosen at run time (``choose_path``): AVX-512 and AVX2+FMA written by
 * hand with intrinsics (x86-64 only, each compiled for its instruction set by a target attribute), and the
 * plain loop that the compiler vectorises for the build's baseline. All three round the same way and redo
 * the same kind of inputs on the same exact path, so their outputs are bit for bit the same (a test checks
 * it on every float32 input). $SIGBENCH_ZIV_PATH (avx512, avx2-fma, plain) forces one the CPU has.
 *
 * Built at first use by native.py with the system's C compiler (-O3 -fopenmp; on x86-64 for the baseline
 * ISA with -mtune=native, elsewhere -march=native). The compiler may contract a * b + c into one fused
 * multiply-add: that only removes roundings from the budget of ziv.py. Each thread runs with subnormals kept
 * (no flush-to-zero), whatever its caller had set, so a subnormal result is rounded like any other.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <stdlib.h>
#include <omp.h>
#ifdef __SSE__
#include <xmmintrin.h>
#endif
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define ZIV_X86 1
#include <immintrin.h>
#define TARGET_AVX2 __attribute__((target("avx2,fma")))
#define TARGET_AVX512 __attribute__((target("avx512f,avx512vl,avx512dq,avx2,fma")))
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

/* The paths, in order of preference. */
enum { PATH_AVX512, PATH_AVX2, PATH_PLAIN, PATHS };
static const char *const PATH_NAMES[PATHS] = {"avx512", "avx2-fma", "plain"};

/* One path's fast path over one block: out[i] = the float64 value rounded to float32 where it decides the
 * result (anything where it does not), and the exact path for the others; returns how many took it. */
typedef int64_t (*block_fn)(const float *x, float *out, int64_t n);
/* One path's fast path, for tests of the error bound: the float64 value before rounding and the flag. */
typedef void (*fast_path_fn)(const float *x, double *wide, unsigned char *flag, int64_t n);

/* --- the plain loop ------------------------------------------------------------------------------------- */

/* The fast path over one block, flags a byte per input (which GCC's vectorisation of the loop writes best);
 * returns whether any input must take the exact path (an OR: counting them here costs the loop 10%). */
static unsigned char plain_fast(const float *restrict x, float *restrict out, unsigned char *restrict flag,
                                int64_t n) {
    unsigned char any = 0;
    for (int64_t i = 0; i < n; i++) {
        double s = fast_value(x[i]);
        out[i] = (float)s;
        flag[i] = is_hard(s);
        any |= flag[i];
    }
    return any;
}

static int64_t plain_block(const float *x, float *out, int64_t n) {
    unsigned char flag[BLOCK];
    int64_t hard = 0;
    if (!plain_fast(x, out, flag, n)) {
        return 0;
    }
    for (int64_t i = 0; i < n; i++) { /* about 1 block in 90 */
        if (flag[i]) {
            out[i] = exact(x[i]);
            hard++;
        }
    }
    return hard;
}

static void plain_fast_path(const float *x, double *wide, unsigned char *flag, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        wide[i] = fast_value(x[i]);
        flag[i] = is_hard(wide[i]);
    }
}

#ifdef ZIV_X86
/* The exact path for the inputs of a block whose bit is set in flag (bit i % 64 of word i / 64). */
static int64_t redo_flagged(const float *x, float *out, const uint64_t *flag, int64_t words) {
    int64_t hard = 0;
    for (int64_t w = 0; w < words; w++) {
        for (uint64_t bits = flag[w]; bits != 0; bits &= bits - 1) {
            int64_t i = 64 * w + __builtin_ctzll(bits);
            out[i] = exact(x[i]);
            hard++;
        }
    }
    return hard;
}

/* --- AVX2 and FMA ------------------------------------------------------------------------------------------
 * The fast path by hand, 16 inputs at a time. GCC's vectorisation of the plain loop keeps the CPU waiting:
 * each vector's chain of dependent operations (a conversion, the reduction, the 9 steps of Horner, the
 * division, the rounding test) is about 100 cycles long, and the out-of-order window holds only a few such
 * chains. Here every step is taken for 4 vectors (16 inputs) together, so 4 independent chains are always in
 * flight: 8 vectors had been 1.3-1.4x faster than the plain loop on an AVX2 AMD EPYC (Zen 3); on Zen 4, with
 * AVX2's 16 registers, 4 vectors are 3% faster than 8 (8 spill; 3, 5, 6 and 10 are slower). As on the AVX-512
 * path, the negation of x is folded into the multiply-adds that use it (4% more): 7.5% in all, one thread,
 * 2^20 inputs, interleaved. The operations are fast_value's, with its a * b + c as fused multiply-adds, so the
 * float64 values are those of fast_value built with FMA. */
#define VECTORS2 4
#define CHUNK2 (4 * VECTORS2)

TARGET_AVX2 static inline void avx2_chunk(const float *x, __m256d s[VECTORS2]) {
    __m256d c[VECTORS2], t[VECTORS2], r[VECTORS2], p[VECTORS2];
    for (int j = 0; j < VECTORS2; j++) { /* c = x clamped; max/min return their second operand for NaN */
        c[j] = _mm256_min_pd(_mm256_set1_pd(CLAMP),
                             _mm256_max_pd(_mm256_set1_pd(-CLAMP), _mm256_cvtps_pd(_mm_loadu_ps(x + 4 * j))));
    }
    for (int j = 0; j < VECTORS2; j++) { /* y = -c: y INVLN2 + SHIFT and y - k LN2_HI, each rounded once */
        t[j] = _mm256_fnmadd_pd(c[j], _mm256_set1_pd(INVLN2), _mm256_set1_pd(SHIFT));
    }
    for (int j = 0; j < VECTORS2; j++) {
        __m256d k = _mm256_sub_pd(t[j], _mm256_set1_pd(SHIFT));
        r[j] = _mm256_fnmadd_pd(k, _mm256_set1_pd(LN2_LO), _mm256_fnmsub_pd(k, _mm256_set1_pd(LN2_HI), c[j]));
    }
    for (int j = 0; j < VECTORS2; j++) {
        p[j] = _mm256_fmadd_pd(_mm256_set1_pd(EXP_COEFFS[9]), r[j], _mm256_set1_pd(EXP_COEFFS[8]));
    }
    for (int c = 7; c >= 0; c--) {
        for (int j = 0; j < VECTORS2; j++) {
            p[j] = _mm256_fmadd_pd(p[j], r[j], _mm256_set1_pd(EXP_COEFFS[c]));
        }
    }
    for (int j = 0; j < VECTORS2; j++) {
        __m256i two_k = _mm256_add_epi64(_mm256_slli_epi64(_mm256_castpd_si256(t[j]), 52),
                                         _mm256_set1_epi64x(ONE_BITS));
        s[j] = _mm256_div_pd(_mm256_set1_pd(1.0),
                             _mm256_fmadd_pd(p[j], _mm256_castsi256_pd(two_k), _mm256_set1_pd(1.0)));
    }
}

/* The fast path over one block, flags a bit per input (bytes per input, spread from each vector's mask, cost
 * the loop 10%). Where s (1 -+ REL_BAND) round alike, (float) s is that value, so out takes the upper one and
 * saves a conversion; the hard ones are overwritten. */
TARGET_AVX2 static int64_t avx2_block(const float *x, float *out, int64_t n) {
    const __m256d below = _mm256_set1_pd(1.0 - REL_BAND), above = _mm256_set1_pd(1.0 + REL_BAND);
    uint64_t flag[BLOCK / 64 + 1] = {0}, any = 0;
    int64_t i = 0;
    for (; i + CHUNK2 <= n; i += CHUNK2) {
        __m256d s[VECTORS2];
        avx2_chunk(x + i, s);
        uint64_t hard = 0;
        for (int j = 0; j < VECTORS2; j++) {
            __m128 up = _mm256_cvtpd_ps(_mm256_mul_pd(s[j], above));
            __m128 down = _mm256_cvtpd_ps(_mm256_mul_pd(s[j], below));
            _mm_storeu_ps(out + i + 4 * j, up);
            hard |= (uint64_t)_mm_movemask_ps(_mm_cmp_ps(up, down, _CMP_NEQ_UQ)) << (4 * j); /* NaN: unordered */
        }
        flag[i / 64] |= hard << (i % 64);
        any |= hard;
    }
    for (; i < n; i++) { /* the rest of a last, partial block */
        double s = fast_value(x[i]);
        out[i] = (float)s;
        uint64_t hard = is_hard(s);
        flag[i / 64] |= hard << (i % 64);
        any |= hard;
    }
    return any ? redo_flagged(x, out, flag, (n + 63) / 64) : 0;
}

TARGET_AVX2 static void avx2_fast_path(const float *x, double *wide, unsigned char *flag, int64_t n) {
    int64_t i = 0;
    for (; i + CHUNK2 <= n; i += CHUNK2) {
        __m256d s[VECTORS2];
        avx2_chunk(x + i, s);
        for (int j = 0; j < VECTORS2; j++) {
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

/* --- AVX-512 -----------------------------------------------------------------------------------------------
 * The same steps on 8 float64 lanes, 8 vectors at a time (64 inputs), in two fewer operations per vector:
 * the negation of x is folded into the multiply-adds that use it (negating is exact, so y INVLN2 + SHIFT and
 * y - k LN2_HI round to the same values), and 2^k comes from vscalefpd, which AVX2 lacks (p 2^k is exact, so
 * 1 + p 2^k rounds once, like the multiply-add). (vrangepd would clamp in one operation, but returns the
 * bound for a NaN input, which must stay NaN to be flagged.) The float64 values are fast_value's with FMA, the division the same IEEE
 * division (a reciprocal estimate and two Newton steps instead measured 10% slower on Zen 4). The rounding
 * test's mask comes straight from the comparison (AVX-512VL). On an AMD EPYC 9004 (Zen 4), one thread:
 * 0.78 ns per input against 1.04 for the AVX2 path (1.12 before its negation was folded and its vectors 4), the
 * division included. */
#define VECTORS5 8
#define CHUNK5 (8 * VECTORS5)

TARGET_AVX512 static inline void avx512_chunk(const float *x, __m512d s[VECTORS5]) {
    __m512d c[VECTORS5], t[VECTORS5], k[VECTORS5], r[VECTORS5], p[VECTORS5];
    for (int j = 0; j < VECTORS5; j++) { /* c = x clamped; max/min return their second operand for NaN */
        c[j] = _mm512_min_pd(_mm512_set1_pd(CLAMP),
                             _mm512_max_pd(_mm512_set1_pd(-CLAMP), _mm512_cvtps_pd(_mm256_loadu_ps(x + 8 * j))));
    }
    for (int j = 0; j < VECTORS5; j++) { /* y = -c: y INVLN2 + SHIFT and y - k LN2_HI, each rounded once */
        t[j] = _mm512_fnmadd_pd(c[j], _mm512_set1_pd(INVLN2), _mm512_set1_pd(SHIFT));
    }
    for (int j = 0; j < VECTORS5; j++) {
        k[j] = _mm512_sub_pd(t[j], _mm512_set1_pd(SHIFT));
        r[j] = _mm512_fnmadd_pd(k[j], _mm512_set1_pd(LN2_LO), _mm512_fnmsub_pd(k[j], _mm512_set1_pd(LN2_HI), c[j]));
    }
    for (int j = 0; j < VECTORS5; j++) {
        p[j] = _mm512_fmadd_pd(_mm512_set1_pd(EXP_COEFFS[9]), r[j], _mm512_set1_pd(EXP_COEFFS[8]));
    }
    for (int q = 7; q >= 0; q--) {
        for (int j = 0; j < VECTORS5; j++) {
            p[j] = _mm512_fmadd_pd(p[j], r[j], _mm512_set1_pd(EXP_COEFFS[q]));
        }
    }
    for (int j = 0; j < VECTORS5; j++) { /* p 2^k is exact, so 1 + p 2^k is rounded once, as by the FMA */
        s[j] = _mm512_div_pd(_mm512_set1_pd(1.0), _mm512_add_pd(_mm512_scalef_pd(p[j], k[j]), _mm512_set1_pd(1.0)));
    }
}

TARGET_AVX512 static int64_t avx512_block(const float *x, float *out, int64_t n) {
    const __m512d below = _mm512_set1_pd(1.0 - REL_BAND), above = _mm512_set1_pd(1.0 + REL_BAND);
    uint64_t flag[BLOCK / 64 + 1] = {0}, any = 0;
    int64_t i = 0;
    for (; i + CHUNK5 <= n; i += CHUNK5) {
        __m512d s[VECTORS5];
        avx512_chunk(x + i, s);
        uint64_t hard = 0;
        for (int j = 0; j < VECTORS5; j++) {
            __m256 up = _mm512_cvtpd_ps(_mm512_mul_pd(s[j], above));
            __m256 down = _mm512_cvtpd_ps(_mm512_mul_pd(s[j], below));
            _mm256_storeu_ps(out + i + 8 * j, up);
            hard |= (uint64_t)_mm256_cmp_ps_mask(up, down, _CMP_NEQ_UQ) << (8 * j); /* NaN: unordered */
        }
        flag[i / 64] = hard; /* CHUNK5 is 64: one word per chunk */
        any |= hard;
    }
    for (; i < n; i++) {
        double s = fast_value(x[i]);
        out[i] = (float)s;
        uint64_t hard = is_hard(s);
        flag[i / 64] |= hard << (i % 64);
        any |= hard;
    }
    return any ? redo_flagged(x, out, flag, (n + 63) / 64) : 0;
}

TARGET_AVX512 static void avx512_fast_path(const float *x, double *wide, unsigned char *flag, int64_t n) {
    int64_t i = 0;
    for (; i + CHUNK5 <= n; i += CHUNK5) {
        __m512d s[VECTORS5];
        avx512_chunk(x + i, s);
        for (int j = 0; j < VECTORS5; j++) {
            _mm512_storeu_pd(wide + i + 8 * j, s[j]);
        }
    }
    for (; i < n; i++) {
        wide[i] = fast_value(x[i]);
    }
    for (i = 0; i < n; i++) {
        flag[i] = is_hard(wide[i]);
    }
}
#endif

/* --- dispatch ------------------------------------------------------------------------------------------- */

static const block_fn BLOCKS[PATHS] = {
#ifdef ZIV_X86
    avx512_block, avx2_block,
#else
    NULL, NULL,
#endif
    plain_block};
static const fast_path_fn FAST_PATHS[PATHS] = {
#ifdef ZIV_X86
    avx512_fast_path, avx2_fast_path,
#else
    NULL, NULL,
#endif
    plain_fast_path};

/* Whether this CPU (and its operating system, which must save the wide registers) runs path p. */
int sigbench_ziv_path_supported(int p) {
    if (p == PATH_PLAIN) {
        return 1;
    }
#ifdef ZIV_X86
    __builtin_cpu_init();
    if (p == PATH_AVX512) {
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("fma");
    }
    if (p == PATH_AVX2) {
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
#endif
    return 0;
}

/* The path of sigbench_ziv_f32: the one $SIGBENCH_ZIV_PATH names if the CPU runs it, else the first the CPU
 * runs (native.py refuses a name that is not one of these, so a forced path never falls back silently). */
static int choose_path(void) {
    const char *wanted = getenv("SIGBENCH_ZIV_PATH");
    for (int p = 0; wanted != NULL && *wanted != 0 && p < PATHS; p++) {
        if (strcmp(wanted, PATH_NAMES[p]) == 0 && sigbench_ziv_path_supported(p)) {
            return p;
        }
    }
    for (int p = 0; p < PATHS; p++) {
        if (sigbench_ziv_path_supported(p)) {
            return p;
        }
    }
    return PATH_PLAIN;
}

static int chosen = -1; /* chosen at the first call; every thread that races there computes the same */

/* The name of the path sigbench_ziv_f32 runs ("avx512", "avx2-fma" or "plain"). */
const char *sigbench_ziv_path(void) {
    if (chosen < 0) {
        chosen = choose_path();
    }
    return PATH_NAMES[chosen];
}

/* The name of path p, or NULL past the last. */
const char *sigbench_ziv_path_name(int p) { return p >= 0 && p < PATHS ? PATH_NAMES[p] : NULL; }

/* Blocks [first, last) on the calling thread, with subnormals kept (no flush-to-zero, no denormals-are-zero)
 * whatever the thread had set: XLA's threads flush them. */
static int64_t run_blocks(block_fn block, const float *x, float *out, int64_t n, int64_t first, int64_t last) {
#ifdef __SSE__
    unsigned int csr = _mm_getcsr();
    _mm_setcsr(csr & ~0x8040u); /* FTZ is bit 15, DAZ bit 6 */
#endif
    int64_t hard = 0;
    for (int64_t b = first; b < last; b++) {
        int64_t start = b * BLOCK, len = n - start < BLOCK ? n - start : BLOCK;
        hard += block(x + start, out + start, len);
    }
#ifdef __SSE__
    _mm_setcsr(csr);
#endif
    return hard;
}

/* sigbench_ziv_f32 on path p; -1 if this CPU cannot run it. */
int64_t sigbench_ziv_f32_on(const float *x, float *out, int64_t n, int threads, int p) {
    if (p < 0 || p >= PATHS || !sigbench_ziv_path_supported(p)) {
        return -1;
    }
    block_fn block = BLOCKS[p];
    int64_t blocks = (n + BLOCK - 1) / BLOCK, hard = 0;
    if (threads > blocks) {
        threads = (int)blocks;
    }
    if (threads <= 1) {
        return run_blocks(block, x, out, n, 0, blocks);
    }
#pragma omp parallel num_threads(threads) reduction(+ : hard)
    {
        int64_t team = omp_get_num_threads(), me = omp_get_thread_num();
        hard += run_blocks(block, x, out, n, blocks * me / team, blocks * (me + 1) / team);
    }
    return hard;
}

/* out = sigmoid(x), correctly rounded, for n float32 values on up to `threads` OpenMP threads (one block of
 * BLOCK inputs or fewer runs on the calling thread alone), on the chosen path; returns how many inputs took
 * the exact path. */
int64_t sigbench_ziv_f32(const float *x, float *out, int64_t n, int threads) {
    if (chosen < 0) {
        chosen = choose_path();
    }
    return sigbench_ziv_f32_on(x, out, n, threads, chosen);
}

/* For tests of the error bound: the float64 value before rounding, and the flag, of each input, by path p's
 * code (its chunks, then the rest); -1 if this CPU cannot run it. */
int sigbench_ziv_f32_fast_path_on(const float *x, double *wide, unsigned char *flag, int64_t n, int p) {
    if (p < 0 || p >= PATHS || !sigbench_ziv_path_supported(p)) {
        return -1;
    }
    FAST_PATHS[p](x, wide, flag, n);
    return 0;
}

/* The same on the chosen path. */
void sigbench_ziv_f32_fast_path(const float *x, double *wide, unsigned char *flag, int64_t n) {
    if (chosen < 0) {
        chosen = choose_path();
    }
    FAST_PATHS[chosen](x, wide, flag, n);
}
