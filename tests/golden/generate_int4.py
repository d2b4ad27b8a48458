#!/usr/bin/python3
"""Golden vectors for lowbit's int4 weight-only GEMV / GEMM spec (core/gemm_int4.hpp) and its
binary16 conversion (core/f16.hpp), computed independently of lowbit with numpy and Python's
exact rational arithmetic.

    /usr/bin/python3 tests/golden/generate_int4.py

rewrites tests/golden/data/int4_gemm.txt and tests/golden/data/f16_from_f32.txt
(deterministic: fixed seeds).

Exactness. The spec is a fixed sequence of float32 operations: fused multiply-adds
fma(a, b, c) (one rounding of the exact a * b + c) and products. numpy has no fma, and
emulating it in float64 is not exact (a * b is exact in float64 for float32 inputs, but the
following addition can round in float64 and then again to float32: double rounding). So
every fma and product here is computed on exact rationals (fractions.Fraction) and rounded
once to float32, round-half-to-even, by f32_round() below: find the binade of |x|, take the
ulp of float32 there (2^-149 in the subnormal range), round x / ulp to the nearest integer,
ties to even (Python's round() on a Fraction), and overflow past the largest float32 to Inf.
f32_round is checked against numpy's float64 -> float32 rounding on random doubles, whose
conversion is a single correct rounding, at the start of every run.

The q8 activation quantization is computed with numpy float32 arithmetic, which is IEEE
single precision with one rounding per operation: amax = max |x|, id = float32(127) / amax,
q = rint(x * id) (numpy's rint is round half to even), d = amax / float32(127); blocks whose
id is not finite give d = 0 and q = 0.

f16_from_f32.txt: numpy's float32 -> float16 conversion (round to nearest even, overflow to
Inf) of edge-case and random float32 bit patterns; NaNs are not included (numpy keeps a
signalling NaN signalling, lowbit quiets it as the x86 F16C instructions do).
"""

import os
import random
from fractions import Fraction

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")
F32 = np.float32
FLT_MAX = Fraction(float(np.finfo(np.float32).max))


def f32_round(x):
    """The float32 nearest to the rational x (ties to even), as a Python float (exact)."""
    if x == 0:
        return 0.0
    sign = -1 if x < 0 else 1
    a = abs(x)
    e = a.numerator.bit_length() - a.denominator.bit_length()  # 2^e <= a < 2^(e+2)
    while Fraction(2) ** e > a:
        e -= 1
    while Fraction(2) ** (e + 1) <= a:
        e += 1
    e = max(e, -126)  # subnormals share the ulp of the smallest binade
    ulp = Fraction(2) ** (e - 23)
    m = round(a / ulp)  # Fraction.__round__: half to even
    v = m * ulp
    if v > FLT_MAX:
        return sign * float("inf")
    return sign * float(v)


def fma(a, b, c):
    return f32_round(Fraction(a) * Fraction(b) + Fraction(c))


def mul(a, b):
    return f32_round(Fraction(a) * Fraction(b))


def self_check():
    rng = np.random.default_rng(7)
    vals = np.concatenate([rng.standard_normal(2000) * 10.0 ** rng.integers(-45, 39, 2000),
                           [1.0 + 2.0 ** -24, 1.0 + 3 * 2.0 ** -24, 2.0 ** -150, 3 * 2.0 ** -150, 2.0 ** -151]])
    with np.errstate(over="ignore"):
        for v in vals:
            want = float(F32(v))
            got = f32_round(Fraction(float(v)))
            assert want == got or (np.isinf(want) and np.isinf(got) and want == got), (v, want, got)


def fh(v):
    return float(F32(v)).hex()


def f16_bits(v):
    return int(np.array([v], dtype=np.float16).view(np.uint16)[0])


def f16_value(bits):
    return float(np.array([bits], dtype=np.uint16).view(np.float16)[0])


def pack_nibbles(vals):
    """lowbit int4 layout: element 2i in the low nibble of byte i."""
    out = []
    for i in range(0, len(vals), 2):
        lo = vals[i] & 0xF
        hi = (vals[i + 1] & 0xF) if i + 1 < len(vals) else 0
        out.append(lo | (hi << 4))
    return out


def quantize_q8(x):
    """numpy float32 per-block quantization (module docstring). x: float32 [M, K]."""
    m, k = x.shape
    q = np.zeros((m, k), dtype=np.int32)
    d = np.zeros((m, k // 32), dtype=np.float32)
    for r in range(m):
        for b in range(k // 32):
            blk = x[r, b * 32:(b + 1) * 32]
            amax = np.max(np.abs(blk))
            with np.errstate(divide="ignore", over="ignore"):
                idv = F32(127.0) / amax
            if not np.isfinite(idv):
                continue
            q[r, b * 32:(b + 1) * 32] = np.rint(blk * idv).astype(np.int32)
            d[r, b] = amax / F32(127.0)
    return q, d


def make_case(rng, fmt, g, scale_kind, m, n, k, bias):
    if fmt == "s4":
        qw = rng.integers(-8, 8, size=(n, k))
        zp = None
    else:
        qw = rng.integers(0, 16, size=(n, k))
        zp = rng.integers(0, 16, size=(n, k // g))
    w_int = qw.copy()
    if zp is not None:
        w_int = qw - np.repeat(zp, g, axis=1)
    scales32 = (rng.uniform(0.001, 0.1, size=(n, k // g)) * rng.choice([-1.0, 1.0], size=(n, k // g))).astype(np.float32)
    if scale_kind == "f16":
        sbits = [[f16_bits(v) for v in row] for row in scales32]
        svals = [[f16_value(b) for b in row] for row in sbits]
    else:
        sbits = None
        svals = [[float(v) for v in row] for row in scales32]
    x = (rng.standard_normal((m, k)) * rng.choice([0.01, 1.0, 30.0], size=(m, 1))).astype(np.float32)
    # a few exact ties for the q8 rounding: a block with amax 127 makes id = 1
    if k >= 64:
        x[0, 32:64] = np.array([127.0, -127.0, 2.5, -2.5, 3.5, -3.5, 0.5, -0.5, 1.5, -1.5] + [0.25 * i for i in range(22)],
                               dtype=np.float32)
    if m >= 2 and k >= 32:
        x[1, 0:32] = 0.0  # an all-zero block: d = 0, q = 0
    bvals = (rng.standard_normal(n) * 0.5).astype(np.float32) if bias else None

    # f32 path, the spec's exact order
    y32 = np.zeros((m, n), dtype=np.float64)
    for r in range(m):
        for c in range(n):
            acc = float(bvals[c]) if bias else 0.0
            for gi in range(k // g):
                t = 0.0
                for kk in range(gi * g, (gi + 1) * g):
                    t = fma(float(x[r, kk]), float(w_int[c, kk]), t)
                acc = fma(t, svals[c][gi], acc)
            y32[r, c] = acc
    # q8 path
    q8, d8 = quantize_q8(x)
    yq = np.zeros((m, n), dtype=np.float64)
    for r in range(m):
        for c in range(n):
            acc = float(bvals[c]) if bias else 0.0
            for b in range(k // 32):
                dot = int(np.dot(q8[r, b * 32:(b + 1) * 32].astype(np.int64), w_int[c, b * 32:(b + 1) * 32].astype(np.int64)))
                s = mul(float(d8[r, b]), svals[c][b * 32 // g])
                acc = fma(float(dot), s, acc)
            yq[r, c] = acc
    fields = [fmt, str(g), scale_kind, str(m), str(n), str(k), "1" if bias else "0"]
    stored = (qw & 0xF).flatten().tolist()
    fields += [str(b) for b in pack_nibbles(stored)]
    if scale_kind == "f16":
        fields += [str(b) for row in sbits for b in row]
    else:
        fields += [fh(v) for row in svals for v in row]
    if zp is not None:
        fields += [str(int(v)) for v in zp.flatten()]
    fields += [fh(v) for v in x.flatten()]
    if bias:
        fields += [fh(v) for v in bvals]
    fields += [fh(v) for v in y32.flatten()]
    fields += [str(int(v)) for v in q8.flatten()]
    fields += [fh(v) for v in d8.flatten()]
    fields += [fh(v) for v in yq.flatten()]
    return " ".join(fields)


def write_gemm():
    rng = np.random.default_rng(20240611)
    cases = [
        ("s4", 32, "f32", 1, 1, 32, False),
        ("s4", 32, "f16", 1, 3, 64, True),
        ("u4", 32, "f32", 2, 5, 64, False),
        ("u4", 64, "f16", 1, 17, 128, True),
        ("s4", 64, "f32", 3, 7, 128, True),
        ("s4", 128, "f16", 2, 4, 256, False),
        ("u4", 128, "f32", 1, 16, 256, True),
        ("s4", 32, "f32", 2, 33, 96, False),
        ("u4", 32, "f16", 3, 2, 160, False),
        ("s4", 256, "f32", 1, 5, 256, True),
    ]
    path = os.path.join(DATA, "int4_gemm.txt")
    with open(path, "w") as f:
        f.write("# generated by tests/golden/generate_int4.py (numpy %s, exact rational fma); do not edit\n" % np.__version__)
        f.write("# the spec of include/lowbit/core/gemm_int4.hpp computed independently: ref::gemm_int4_f32,\n")
        f.write("# ref::quantize_q8 and ref::gemm_int4_q8 (see the generator's docstring for how).\n")
        f.write("# floats are float.hex() of float32 values; one case per line, whitespace-separated\n")
        f.write("# columns: fmt(s4|u4) G scales(f32|f16) M N K bias(0|1) data[N*K/2 bytes, lowbit layout]\n")
        f.write("#   scales[N*K/G: hex floats or binary16 bits as integers] zero_points[N*K/G, u4 only] a[M*K]\n")
        f.write("#   bias[N, if bias] y_f32[M*N] q8_q[M*K] q8_d[M*K/32] y_q8[M*N]\n")
        for c in cases:
            f.write(make_case(rng, *c) + "\n")
    print("wrote %s (%d cases)" % (path, len(cases)))


def write_f16():
    rnd = random.Random(11)
    bits = set()
    # around every binade boundary and the ties of each (normal and subnormal halves)
    for h in range(0, 0x7C00, 97):
        lo = float(np.array([h], dtype=np.uint16).view(np.float16)[0])
        hi = float(np.array([h + 1], dtype=np.uint16).view(np.float16)[0])
        mid = (lo + hi) / 2.0  # exact in float32 (12 significant bits)
        mb = int(np.array([mid], dtype=np.float32).view(np.uint32)[0])
        for d in (-1, 0, 1):
            bits.add(mb + d)
    for v in (0.0, 65504.0, 65519.0, 65520.0, 65536.0, 1e30, 2.0 ** -24, 2.0 ** -25, 3 * 2.0 ** -26, 2.0 ** -26,
              2.0 ** -14, 2.0 ** -14 - 2.0 ** -25, 1.0 + 2.0 ** -11, 1.0 + 3 * 2.0 ** -11, float("inf"), 1e-45, 1e-40):
        b = int(np.array([v], dtype=np.float32).view(np.uint32)[0])
        bits.add(b)
        bits.add(b + 1)
        bits.add(max(b - 1, 0))
    for _ in range(3000):
        bits.add(rnd.getrandbits(31))
    out = []
    for b in sorted(bits):
        for s in (0, 0x80000000):
            u = b | s
            f = np.array([u], dtype=np.uint32).view(np.float32)[0]
            if np.isnan(f):
                continue
            with np.errstate(over="ignore"):
                h = int(np.array([f], dtype=np.float16).view(np.uint16)[0])
            out.append("%d %d" % (u, h))
    path = os.path.join(DATA, "f16_from_f32.txt")
    with open(path, "w") as f:
        f.write("# generated by tests/golden/generate_int4.py (numpy %s); do not edit\n" % np.__version__)
        f.write("# numpy float32 -> float16 (round to nearest even): columns: f32_bits f16_bits (decimal)\n")
        f.write("\n".join(out) + "\n")
    print("wrote %s (%d values)" % (path, len(out)))


if __name__ == "__main__":
    self_check()
    write_gemm()
    write_f16()
