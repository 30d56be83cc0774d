#!/usr/bin/python3
"""Prints the coefficients of sorix's float64 erf (core/internal/sorix_core/kernels/math.hpp).

Below |x| = 0.65: the Taylor series of erf(x)/x in t = x^2, 2/sqrt(pi) (-1)^n / (n! (2n + 1)),
16 terms. Above: g(x) = erfc(x) e^(x^2) on five pieces, each the Chebyshev interpolant of the
lowest degree whose coefficients, rounded to double, stay within 1.1e-16 of g (relative), written
as a polynomial in u = x - centre (the code evaluates it by Horner's rule with fmadd; its centres
are the short decimals 0.975, 1.7, 2.55, 3.6, 5.1, within 1e-16 of these: a shift of < 1e-17 relative).

Needs mpmath (Debian's python3-mpmath):  /usr/bin/python3 scripts/fit_erf.py
"""
import struct

import mpmath as mp

mp.mp.dps = 50
PIECES = [(0.65, 1.3), (1.3, 2.1), (2.1, 3.0), (3.0, 4.2), (4.2, 6.0)]


def bits(v):
    return "0x%016xull" % struct.unpack("<Q", struct.pack("<d", float(v)))[0]


def g(x):
    return mp.erfc(x) * mp.exp(x * x)


def interpolant(a, b, n):
    c, h = (a + b) / 2, (b - a) / 2
    us = [h * mp.cos(mp.pi * (k + mp.mpf(1) / 2) / (n + 1)) for k in range(n + 1)]
    m = mp.matrix([[u ** j for j in range(n + 1)] for u in us])
    coef = mp.lu_solve(m, mp.matrix([g(c + u) for u in us]))
    return c, [mp.mpf(float(coef[j])) for j in range(n + 1)]


def worst(a, b, c, coef):
    w = 0
    for i in range(401):
        x = a + (b - a) * i / 400
        y = mp.mpf(0)
        for cc in reversed(coef):
            y = y * (x - c) + cc
        w = max(w, abs(y / g(x) - 1))
    return w


def main():
    taylor = [2 / mp.sqrt(mp.pi) * (-1) ** n / (mp.factorial(n) * (2 * n + 1)) for n in range(16)]
    print("small:", ", ".join(bits(v) for v in taylor))
    for a, b in PIECES:
        a, b = mp.mpf(a), mp.mpf(b)
        for n in range(10, 30):
            c, coef = interpolant(a, b, n)
            if worst(a, b, c, coef) < 1.1e-16:
                print("piece [%g, %g), centre %.17g:" % (a, b, c), ", ".join(bits(v) for v in coef))
                break


if __name__ == "__main__":
    main()
