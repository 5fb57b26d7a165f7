"""The polynomial of Ziv's fast path (``sigbench_backends.ziv.EXP_COEFFS``): the minimax polynomial of e^r on
|r| <= ln(2)/2 in relative error, by Remez's exchange at 200 bits of precision, and its error once its
coefficients are rounded to float64.

    python scripts/ziv_remez.py [DEGREE]      # default 9; prints the error and the coefficients
"""
from __future__ import annotations

import sys

import mpmath as mp

mp.mp.prec = 200
HALF_LN2 = mp.log(2) / 2
GRID = 4000  # points where each iteration looks for the error's extrema
CHECK = 20000  # points where the rounded coefficients are checked


def _solve(nodes: list, degree: int) -> list:
    """Coefficients c and error E with sum c_j x^j - e^x = (-1)^i E e^x at each node."""
    size = degree + 2
    a, b = mp.matrix(size, size), mp.matrix(size, 1)
    for i, x in enumerate(nodes):
        for j in range(degree + 1):
            a[i, j] = x**j
        a[i, degree + 1] = (-1) ** i * mp.exp(x)
        b[i] = mp.exp(x)
    solution = mp.lu_solve(a, b)
    return [solution[j] for j in range(degree + 1)]


def _relative_error(coeffs: list, x: mp.mpf) -> mp.mpf:
    return (mp.polyval(coeffs[::-1], x) - mp.exp(x)) / mp.exp(x)


def remez(degree: int, iterations: int = 8) -> list:
    nodes = [HALF_LN2 * mp.cos(mp.pi * (degree + 1 - i) / (degree + 1)) for i in range(degree + 2)]
    xs = [-HALF_LN2 + 2 * HALF_LN2 * k / GRID for k in range(GRID + 1)]
    coeffs = _solve(nodes, degree)
    for _ in range(iterations):
        errors = [_relative_error(coeffs, x) for x in xs]
        extrema, run = [], [0]
        for k in range(1, len(xs)):  # the largest error of each run of one sign
            if mp.sign(errors[k]) != mp.sign(errors[run[-1]]):
                extrema.append(max(run, key=lambda q: abs(errors[q])))
                run = [k]
            else:
                run.append(k)
        extrema.append(max(run, key=lambda q: abs(errors[q])))
        if len(extrema) != degree + 2:
            break
        nodes = [xs[q] for q in extrema]
        coeffs = _solve(nodes, degree)
    return coeffs


def main() -> None:
    degree = int(sys.argv[1]) if len(sys.argv) > 1 else 9
    rounded = [float(c) for c in remez(degree)]
    worst = max(abs(_relative_error([mp.mpf(c) for c in rounded], -HALF_LN2 + 2 * HALF_LN2 * k / CHECK))
                for k in range(CHECK + 1))
    print(f"degree {degree}: relative error of the float64 coefficients 2^{float(mp.log(worst, 2)):.2f}")
    print("EXP_COEFFS = (" + ", ".join(repr(c) for c in rounded) + ")")


if __name__ == "__main__":
    main()
