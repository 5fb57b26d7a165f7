"""The constants of the float64 fast path of the ``accurate`` float32 sigmoids: NumPy's numba kernel, JAX's XLA
fusion (without a compiler, or on a GPU), and the native kernel of PyTorch and JAX (``ziv_kernel.c`` spells
the same constants in C; the tests hold both to the bound below).

Ziv's strategy: evaluate 1 / (1 + e^-x) in float64 with a proven relative error bound, round to float32, and
send to an exact path only the inputs whose float64 value lies within that bound of a float32 rounding
midpoint: those where s (1 - REL_BAND) and s (1 + REL_BAND) round to different float32 values. Rounding is
monotonic, so where they agree the true value rounds to the same float32; the test needs no bit tricks and
holds for subnormal results too (NaN inputs fail it, as NaN != NaN, and take the exact path).

The evaluation, for y = -x clamped to [-CLAMP, CLAMP] (beyond it the float32 result is 0 or 1 either way):
k = rint(y / ln 2), r = (y - k LN2_HI) - k LN2_LO, e^y = 2^k P(r) with P the degree-9 polynomial of
EXP_COEFFS (Horner), 2^k built from the bits of k + SHIFT (no float-to-int conversion, which AVX2 lacks for
64-bit integers), then s = 1 / (1 + e^y). Error budget:
- k LN2_HI is exact (LN2_HI has 21 trailing zero bits, |k| <= 159), so r is off by at most 2^-53.5 absolutely;
- |r| <= 0.3466, where P, the minimax polynomial of e^r in relative error (Remez at 200 bits,
  ``scripts/ziv_remez.py``), is within 2^-46.07 of e^r relatively with its coefficients rounded to float64
  (its error equioscillates; checked at 20,001 points), and Horner's roundings add below 2^-50;
- 1 + e^y and the division add 2^-53 each, and an error e in e^y moves s by at most e relatively.
In all, relative error below 2^-45.9 (fused multiply-adds, which the native kernel's AVX2 and AVX-512 paths and
numba's ``contract`` use, only remove roundings; the AVX-512 path's 2^k by vscalefpd is the same exact product);
with the 2^-53 rounding of the products s (1 +- REL_BAND),
REL_BAND = 2^-43 keeps a margin of 7. About 2 REL_BAND / 2^-23.5, 1 input in 2^18.5, is sent to the exact
path. (The degree-11 Taylor polynomial before it, 2^-46.7, took 2 more multiply-adds per input: the native
kernel is 7% faster with this one.)
"""
from __future__ import annotations

import math

INVLN2 = 1 / math.log(2)
LN2_HI = 6.93147180369123816490e-01  # fdlibm's split of ln 2: LN2_HI + LN2_LO = ln 2 to 2^-85
LN2_LO = 1.90821492927058770002e-10
#: 1.5 * 2^52: adding it to an integer-valued float64 k puts k in the low bits of the result's bits.
SHIFT = 6755399441055744.0
#: The bits of 1.0: adding k << 52 to them gives the bits of 2^k.
ONE_BITS = 0x3FF0000000000000
#: The coefficients, constant term first, of the degree-9 minimax polynomial of e^r on |r| <= ln(2)/2, in
#: relative error (``scripts/ziv_remez.py`` prints them).
EXP_COEFFS = (1.0000000000000127, 0.9999999999998928, 0.4999999999945797, 0.16666666667826954,
              0.041666667032463356, 0.008333333002822645, 0.0013888802828821594, 0.0001984159639703441,
              2.4884010015388764e-05, 2.748218700193312e-06)
CLAMP = 110.0
#: Half-width, relative, of the interval around the float64 value that must round to one float32.
REL_BAND = 2.0**-43
