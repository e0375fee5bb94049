"""erf over the array API standard: the twin of ``ops/special.py``'s ``_erf``, written over ``xp``.

The standard has no erf. A module printed for it calls ``_erf`` as numpy's does, and
carries this source (``XP_HELPERS``): the same Chebyshev pieces (a test holds the tables
equal to numpy's), evaluated over the whole array and chosen by ``xp.where``, since an
array of JAX cannot be written item by item. Computed in float64, like numpy's.

>>> import math
>>> xs = xp.asarray([-7.0, -1.5, -0.25, 0.0, 0.5, 1.0, 3.25, 6.0])
>>> bool(xp.all(xp.abs(_erf(xs) - xp.asarray([math.erf(v) for v in xs])) <= 2.3e-16))
True
"""

from __future__ import annotations

import numpy as xp  # the generated module binds xp to its library's namespace

from .helpers import xp_helper

__all__: list[str] = []


@xp_helper
def _erf(x):
    """The error function of each element of x (computed in float64; a float array keeps its dtype)."""
    # erf(x)/x on |x| < 1, a polynomial in t = x**2, highest power first
    small = (
        -7.795898827002142e-10, 1.3720064546777686e-08, -1.6208483801871705e-07, 1.6447424703317362e-06,
        -1.492473690741966e-05, 0.00012055294904839707, -0.0008548325975389692, 0.0052239776071164225,
        -0.02686617064323777, 0.11283791670945006, -0.37612638903183543, 1.1283791670955126,
    )
    # erfc(x) exp(x**2) on [k, k + 1], k = 1..5, a polynomial in u = 2 (x - k) - 1, highest power first
    pieces = (
        # [1, 2]: fit error 1.1e-16
        (1.0959125834917356e-11, -7.82387288116605e-11, 5.035188106062916e-10, -3.3974388960810998e-09,
         2.2329284968957516e-08, -1.4191835155198762e-07, 8.723041191564489e-07, -5.171326018931894e-06,
         2.9470857527439053e-05, -0.00016081117392689626, 0.0008360838095598245, -0.004116363162394126,
         0.019037759963869534, -0.08181145886628141, 0.3215854164543175),
        # [2, 3]: fit error 1.9e-18
        (2.4476738244522083e-13, -2.077909334188526e-12, 1.637375681273273e-11, -1.3312005000928675e-10,
         1.0598014640676434e-09, -8.2311677340656e-09, 6.235098318984807e-08, -4.5991373707582856e-07,
         3.2971847556287464e-06, -2.292471679603018e-05, 0.0001541898009812305, -0.0010001961727617342,
         0.0062344992716642286, -0.03717367339489736, 0.2108063640611436),
        # [3, 4]: fit error 6.5e-20
        (9.754526305599886e-15, -9.731260911815583e-14, 9.191511826813115e-13, -8.869869641958858e-12,
         8.41993389277508e-11, -7.846521636129534e-10, 7.176514874165591e-09, -6.43592683145122e-08,
         5.653391306823231e-07, -4.858403694949229e-06, 4.0792895429927754e-05, -0.0003341343049554237,
         0.0026652832981276437, -0.020661788916626248, 0.1552936556088943),
        # [4, 5]: fit error 3.5e-21
        (6.138854121576069e-16, -7.1032582215328456e-15, 7.888276966704013e-14, -8.895015944102397e-13,
         9.901953782687239e-12, -1.0869312573099364e-10, 1.1762747987369717e-09, -1.254294538668386e-08,
         1.3170690621399827e-07, -1.3609633926324197e-06, 1.3829153408065964e-05, -0.00013807201459872405,
         0.0013532813586530615, -0.013007964315469907, 0.12248480427384142),
        # [5, 6]: fit error 2.7e-22
        (5.5471808743035276e-17, -7.349419243217439e-16, 9.434178491768128e-15, -1.22479094338641e-13,
         1.5739884741125782e-12, -2.000892765911466e-11, 2.515777512749614e-10, -3.1275156405012834e-09,
         3.842791615475234e-08, -4.6649229677151785e-07, 5.592550258325523e-06, -6.61829758092806e-05,
         0.0007727531359686925, -0.008897382350511301, 0.10096221839949909),
    )
    a = xp.abs(xp.astype(x, xp.float64))
    b = xp.minimum(a, 6.0)  # every piece is computed everywhere: clamped, none overflows where unused
    out = xp.where(a < 1.0, b * _xp_horner(small, b * b), xp.ones_like(a))  # 1 for |x| >= 6
    interval = xp.floor(b)
    for k, coefficients in enumerate(pieces, start=1):
        q = _xp_horner(coefficients, 2.0 * (b - k) - 1.0)
        out = xp.where(interval == k, 1.0 - xp.exp(-b * b) * q, out)
    out = xp.where(xp.isnan(a), a, xp.copysign(out, xp.astype(x, xp.float64)))
    return xp.astype(out, x.dtype if xp.isdtype(x.dtype, "real floating") else xp.float64)


@xp_helper
def _xp_horner(coefficients, t):
    """The polynomial with these coefficients (highest power first) at each element of t."""
    p = xp.full_like(t, coefficients[0])
    for c in coefficients[1:]:
        p = p * t + c
    return p
