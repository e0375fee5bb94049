"""Print the coefficient tables of graphc's numpy erf (graphc/ops/special.py), from mpmath.

erf(x) = x * P(x**2) on |x| < 1, P a Chebyshev fit of degree 11 of erf(x)/x in t = x**2 on
[0, 1] (absolute error below 1e-17). On 1 <= |x| < 6, erf = 1 - erfc, and
erfc(x) = exp(-x**2) * erfcx(x), erfcx fitted on each unit interval [k, k + 1] by a
Chebyshev fit of degree 14 in u = 2 (x - k) - 1 (absolute error below 1.1e-16). Beyond 6,
erfc < 2.2e-17 and erf rounds to 1. Run: python scripts/erf_coefficients.py
"""

import mpmath as mp

mp.mp.dps = 40
SMALL_DEGREE = 11
DEGREE = 14


def small():
    """erf(x)/x as a polynomial in t = x**2 on [0, 1], highest power first."""
    def f(t):
        return mp.erf(mp.sqrt(t)) / mp.sqrt(t) if t else 2 / mp.sqrt(mp.pi)

    coefficients, error = mp.chebyfit(f, [0, 1], SMALL_DEGREE + 1, error=True)
    return coefficients, error


def erfcx_piece(k):
    def f(u):
        x = k + (u + 1) / 2
        return mp.erfc(x) * mp.exp(x * x)

    coefficients, error = mp.chebyfit(f, [-1, 1], DEGREE + 1, error=True)
    return coefficients, error


def main():
    coefficients, error = small()
    print(f"# |x| < 1: fit error {mp.nstr(error, 2)}")
    print("SMALL = (" + ", ".join(repr(float(c)) for c in coefficients) + ")")
    print("PIECES = (")
    for k in range(1, 6):
        coefficients, error = erfcx_piece(k)
        print(f"    # [{k}, {k + 1}]: fit error {mp.nstr(error, 2)}")
        print("    (" + ", ".join(repr(float(c)) for c in coefficients) + "),")
    print(")")


if __name__ == "__main__":
    main()
