#!/usr/bin/python3
"""Golden vectors for lowbit's reference integer GEMM (include/lowbit/core/gemm.hpp, ref::gemm).

Run with Debian's numpy: /usr/bin/python3 tests/golden/generate_gemm.py
Writes tests/golden/data/gemm_ref.txt, read by tests/gemm/test_ref_gemm.cpp. Deterministic
(fixed seed); running it again without changes gives an identical file.

Independent of lowbit: the int32 results are numpy int64 matrix products of the definition
    acc[m][n] = sum_k (A[m][k] - za) * (B[k][n] - zb[n])
taken straight from the strided buffers (no zero-point algebra, no 32-bit wrapping), and
asserted to fit int32.

The f32 (dequantize) outputs are y = fma(f32(acc), scale[n], bias[n]), or f32(acc) * scale[n]
without bias, computed with exact rational arithmetic (fractions.Fraction) and ONE rounding
to float32 (round to nearest, ties to even) by round_f32 below:
  - f32(acc): acc is an exact integer; rounding it once is the int32 -> float conversion.
  - fma: the exact value f32(acc) * scale + bias is formed as a Fraction, then rounded once.
    This is the definition of fma. (Doing it in float64 instead is not always exact: the
    product of two float32 is exact in float64 (24 + 24 <= 53 bits), but adding a bias of
    a very different exponent can need more than 53 bits, and rounding first to float64 and
    then to float32 can then differ from one rounding. Fractions avoid the question.)
  - zero results get IEEE's signs: an exact zero sum of non-zero terms is +0; x * y + z
    with both terms zero is -0 only if both are -0; a zero product has the sign
    sign(x) xor sign(y).
round_f32 is checked against numpy's own float32 conversion / multiplication (both
correctly rounded IEEE operations) wherever numpy computes the same thing in one step
(the int -> float32 conversion and the bias-free product), and the script counts how many
fma outputs differ from the unfused float32 f32(f32(acc) * scale) + bias, to show the data
tells the two apart.

Requantized (s8 / u8) outputs are not in the file: the test applies lowbit::ref::requantize
(core/requantize.hpp, golden-tested against TFLite's formulas) to the int32 matrix of each
case and checks ref::gemm's requantizing overloads against it.

Cases: A u8 or s8; B s8 in both layouts (k_by_n: B[k][n] at b[k * ldb + n]; n_by_k:
B[k][n] at b[n * ldb + k]); lda, ldb, ldc at their minimum or larger (the gaps hold random
bytes that must not matter); za in {0, 128, 3, 255} (u8) / {0, -128, 127, -5} (s8); zb none,
per tensor or per output channel (-128 and 127 included); shapes (M, N, K) 1x1x1, 1x17x33,
3x5x64, 7x31x129, 16x16x256, 5x3x0 (K = 0: acc = 0), 4x1x7, 2x9x300; data random over the
full range, at the format ends (all 255 x -128 and the like, with the zero points that
make |A - za| * |B - zb| largest: +-65025 per term), random ends, and "high" data whose
sums pass 2^24 (so f32(acc) rounds, with ties). Dequantize variants: scales per tensor or per
channel (log-uniform in [1e-7, 1e-2]; some per-channel sets hold 0 and a negative scale, valid
since finite), bias none, per tensor or per channel (with -0.0 and a bias cancelling its
product exactly).
"""

import os
from fractions import Fraction

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")
F32 = np.float32

RANGE = {"u8": (0, 255), "s8": (-128, 127)}
B_LO, B_HI = -128, 127
ZA = {"u8": [0, 128, 3, 255], "s8": [0, -128, 127, -5]}
INT32_MIN, INT32_MAX = -2 ** 31, 2 ** 31 - 1


# ---------------------------------------------------------------------------------------
# float32 rounding of exact values

def f32_bits(x):
    return int(np.array([x], dtype=F32).view(np.uint32)[0])


def round_f32(v):
    """The float32 nearest to the exact rational v (ties to even), as np.float32. |v| must
    stay below float32's overflow threshold (checked). v == 0 gives +0 (callers fix signs)."""
    v = Fraction(v)
    if v == 0:
        return F32(0.0)
    d = F32(float(v))  # within one float32 ulp of v (two roundings at most move it that far)
    assert np.isfinite(d)
    cands = {float(d), float(np.nextafter(d, F32(np.inf))), float(np.nextafter(d, F32(-np.inf)))}
    best = None
    for c in sorted(cands):
        err = abs(Fraction(c) - v)
        if best is None or err < best[0] or (err == best[0] and f32_bits(F32(c)) % 2 == 0):
            best = (err, c)
    # the winner must be a true neighbour: v lies within half an ulp of it
    c = F32(best[1])
    ulp = Fraction(float(np.nextafter(abs(c), F32(np.inf)))) - Fraction(float(abs(c)))
    assert best[0] <= ulp / 2
    return c


def signbit(x):
    return bool(np.signbit(x))


def mul_f32(x, y):
    """float32 x * y, correctly rounded (exact rational, one rounding)."""
    exact = Fraction(float(x)) * Fraction(float(y))
    if exact == 0:
        return F32(-0.0) if signbit(x) != signbit(y) else F32(0.0)
    return round_f32(exact)


def fma_f32(x, y, z):
    """fmaf(x, y, z): x * y + z exact, one rounding to float32."""
    exact = Fraction(float(x)) * Fraction(float(y)) + Fraction(float(z))
    if exact == 0:
        prod_zero = float(x) == 0.0 or float(y) == 0.0
        if prod_zero and float(z) == 0.0:
            prod_neg = signbit(x) != signbit(y)
            return F32(-0.0) if (prod_neg and signbit(z)) else F32(0.0)
        return F32(0.0)  # exact cancellation of non-zero terms: +0 in round to nearest
    return round_f32(exact)


def acc_to_f32(acc):
    got = round_f32(Fraction(int(acc))) if acc != 0 else F32(0.0)
    assert f32_bits(got) == f32_bits(F32(np.int64(acc))), acc  # numpy's int64 -> float32 cast
    return got


# ---------------------------------------------------------------------------------------
# formatting

def fh(v):
    return float.hex(float(F32(v)))


def ints(vals):
    return " ".join(str(int(v)) for v in np.asarray(vals).reshape(-1))


def counted_ints(vals):
    vals = np.asarray(vals).reshape(-1)
    return ("%d %s" % (len(vals), ints(vals))).rstrip()


def counted_floats(vals):
    return ("%d %s" % (len(vals), " ".join(fh(v) for v in vals))).rstrip()


# ---------------------------------------------------------------------------------------
# cases

class Case:
    pass


def b_storage(case):
    """Rows, cols and element count of B's buffer for the layout."""
    if case.k == 0:
        return 0, 0, 0
    rows, cols = (case.k, case.n) if case.layout == "k_by_n" else (case.n, case.k)
    return rows, cols, (rows - 1) * case.ldb + cols


def make_case(rng, ta, m, n, k, layout, pads, za, zb, kind, a_val=None, b_val=None):
    c = Case()
    c.ta, c.m, c.n, c.k, c.layout, c.za, c.zb, c.kind = ta, m, n, k, layout, za, list(zb), kind
    pa, pb, pc = pads
    c.lda = k + pa
    c.ldb = (n if layout == "k_by_n" else k) + pb
    c.ldc = n + pc
    lo, hi = RANGE[ta]
    a_size = (m - 1) * c.lda + k
    _, _, b_size = b_storage(c)
    # buffers: random bytes everywhere (the gaps keep them), then the logical elements
    c.a_buf = rng.integers(lo, hi + 1, a_size).astype(np.int64)
    c.b_buf = rng.integers(B_LO, B_HI + 1, b_size).astype(np.int64)
    A = np.zeros((m, k), dtype=np.int64)
    B = np.zeros((k, n), dtype=np.int64)
    if kind == "random":
        A = rng.integers(lo, hi + 1, (m, k))
        B = rng.integers(B_LO, B_HI + 1, (k, n))
    elif kind == "ends":  # every element at one end of its range, at random
        A = rng.choice([lo, hi], (m, k))
        B = rng.choice([B_LO, B_HI], (k, n))
    elif kind == "extreme":  # constant extreme values
        A[:] = a_val
        B[:] = b_val
    elif kind == "high":  # large same-sign terms: sums beyond 2^24
        A = rng.integers(hi - 15, hi + 1, (m, k))
        B = rng.integers(B_HI - 15, B_HI + 1, (k, n))
    else:
        raise ValueError(kind)
    for i in range(m):
        c.a_buf[i * c.lda:i * c.lda + k] = A[i]
    for kk in range(k):
        for j in range(n):
            c.b_buf[kk * c.ldb + j if layout == "k_by_n" else j * c.ldb + kk] = B[kk, j]
    # the definition, read back from the strided buffers
    A2 = np.array([[c.a_buf[i * c.lda + kk] for kk in range(k)] for i in range(m)], dtype=np.int64).reshape(m, k)
    B2 = np.array([[c.b_buf[kk * c.ldb + j if layout == "k_by_n" else j * c.ldb + kk] for j in range(n)]
                   for kk in range(k)], dtype=np.int64).reshape(k, n)
    assert (A2 == A).all() and (B2 == B).all()
    zbv = np.zeros(n, dtype=np.int64) if not zb else np.array(zb * n if len(zb) == 1 else zb, dtype=np.int64)
    acc = (A2 - za) @ (B2 - zbv[None, :])
    # the same sum term by term in Python integers (no numpy overflow anywhere)
    for i in range(m):
        for j in range(n):
            assert int(acc[i, j]) == sum((int(A2[i, kk]) - za) * (int(B2[kk, j]) - int(zbv[j])) for kk in range(k))
    assert acc.min(initial=0) >= INT32_MIN and acc.max(initial=0) <= INT32_MAX
    c.acc = acc
    return c


def gen_cases():
    rng = np.random.default_rng(20240607)
    cases = []
    shapes = [  # (M, N, K), variants per A type
        ((1, 1, 1), 6), ((1, 17, 33), 4), ((3, 5, 64), 4), ((7, 31, 129), 1), ((16, 16, 256), 1), ((5, 3, 0), 4),
        ((4, 1, 7), 4), ((2, 9, 300), 1)]
    for ta in ("u8", "s8"):
        for si, ((m, n, k), variants) in enumerate(shapes):
            for v in range(variants):
                layout = ("k_by_n", "n_by_k")[(v + si + (ta == "s8")) % 2]
                za = ZA[ta][(v + si) % 4]
                mode = (v + 2 * si) % 3
                if mode == 0:
                    zb = []
                elif mode == 1:
                    zb = [int(rng.choice([-128, 127, -3, 0, 61]))]
                else:
                    zb = [int(z) for z in rng.integers(B_LO, B_HI + 1, n)]
                    zb[0] = -128 if v % 2 else 127
                    if n > 1:
                        zb[-1] = 127 if v % 2 else -128
                pads = [(0, 0, 0), (3, 5, 2), (1, 0, 0), (0, 2, 1), (2, 1, 3), (0, 0, 4)][(v + si) % 6]
                kind = "ends" if v == 2 else "random"
                cases.append(make_case(rng, ta, m, n, k, layout, pads, za, zb, kind))
        # constant extremes: (A value, B value, za, zb) giving the largest |terms| of each sign
        lo, hi = RANGE[ta]
        ext = [(hi, B_LO, lo, []), (lo, B_HI, hi, [B_LO]), (lo, B_LO, hi, [B_HI]), (hi, B_HI, lo, [B_LO]),
               (hi, B_LO, ZA[ta][1], None), (lo, B_LO, 0, [])]
        for ei, (av, bv, za, zb) in enumerate(ext):
            shapes_e = [[(3, 5, 64), (1, 17, 33)][ei % 2]]
            if ei == (1 if ta == "u8" else 2):
                shapes_e.append((2, 9, 300))
            for si, (m, n, k) in enumerate(shapes_e):
                zbs = zb if zb is not None else [B_LO if j % 2 else B_HI for j in range(n)]  # per channel, both ends
                layout = ("k_by_n", "n_by_k")[(ei // 2 + si + (ta == "s8")) % 2]
                pads = [(0, 0, 0), (2, 3, 1)][(ei + si) % 2]
                cases.append(make_case(rng, ta, m, n, k, layout, pads, za, zbs, "extreme", av, bv))
        # sums beyond 2^24 (f32(acc) rounds, ties included)
        v = 0 if ta == "u8" else 1
        cases.append(make_case(rng, ta, 2, 9, 300, ("k_by_n", "n_by_k")[v], (v, 0, 1), lo + 3 * v, [B_LO], "high"))
    return rng, cases


def dequant_variants(rng, case, count, first):
    """count (scales, bias) variants out of the 6 combinations of scales per tensor / per
    channel and bias none / per tensor / per channel."""
    combos = [("t", ""), ("c", ""), ("t", "t"), ("c", "c"), ("t", "c"), ("c", "t")]
    n = case.n
    typical = float(max(1, np.abs(case.acc).max(initial=0)))
    out = []
    for i in range(count):
        sm, bm = combos[(first + i) % len(combos)]
        ns = 1 if sm == "t" else n
        scales = [F32(10.0 ** rng.uniform(-7, -2)) for _ in range(ns)]
        if ns > 2 and (first + i) % 5 == 0:  # zero and negative scales are finite, so valid
            scales[1] = F32(0.0)
            scales[2] = -scales[2]
        nb = 0 if bm == "" else 1 if bm == "t" else n
        mag = typical * float(scales[0])
        bias = [F32(rng.normal(0.0, max(mag, 1e-6))) for _ in range(nb)]
        if nb > 1:
            bias[0] = F32(-0.0)
        if nb > 2:
            # a bias cancelling one product exactly (an exact 0 result: +0)
            bias[1] = -mul_f32(acc_to_f32(case.acc[0, 1]), scales[1 % ns])
        out.append((scales, bias))
    return out


def dequantize(case, scales, bias, stats):
    y = []
    for i in range(case.m):
        for j in range(case.n):
            a = acc_to_f32(case.acc[i, j])
            s = scales[j if len(scales) > 1 else 0]
            if bias:
                b = bias[j if len(bias) > 1 else 0]
                v = fma_f32(a, s, b)
                unfused = F32(F32(a * s) + b)
                stats["fma"] += 1
                stats["fma_differs_from_unfused"] += f32_bits(unfused) != f32_bits(v)
            else:
                v = mul_f32(a, s)
                assert f32_bits(v) == f32_bits(F32(a * s))  # numpy's float32 multiply
            if v == 0:
                stats["zeros"] += 1
                stats["negative_zeros"] += signbit(v)
            y.append(v)
    return y


def main():
    rng, cases = gen_cases()
    os.makedirs(DATA, exist_ok=True)
    path = os.path.join(DATA, "gemm_ref.txt")
    stats = {"fma": 0, "fma_differs_from_unfused": 0, "zeros": 0, "negative_zeros": 0, "acc_beyond_2^24": 0}
    with open(path, "w") as f:
        f.write("# generated by tests/golden/generate_gemm.py with numpy %s; do not edit, regenerate with "
                "/usr/bin/python3 tests/golden/generate_gemm.py\n" % np.__version__)
        f.write("# lowbit::ref::gemm (core/gemm.hpp): C (M x N) = sum_k (A[m][k] - za) * (B[k][n] - zb[n]), A u8 or s8\n")
        f.write("# (row-major, leading dimension lda), B s8 (layout k_by_n: B[k][n] at b[k*ldb+n]; n_by_k: at\n")
        f.write("# b[n*ldb+k]), zb: nzb = 0 (none), 1 (per tensor) or N (per output channel). acc: numpy int64 from\n")
        f.write("# the strided buffers. Dequantize: y[m][n] = fma(f32(acc), scale[n], bias[n]) (f32(acc) * scale[n]\n")
        f.write("# without bias), exact rational arithmetic rounded once to float32; nscale 1 or N, nbias 0, 1 or N.\n")
        f.write("# a[] and b[] are the whole buffers ((M-1)*lda+K and (rows-1)*ldb+cols elements; K = 0: b empty),\n")
        f.write("# gaps included; acc and y are M x N row-major (compact: the test places them at ldc).\n")
        f.write("# Requantized outputs are not here: the test applies lowbit::ref::requantize to acc.\n")
        f.write("# floats are float.hex() of float32 values; one case per line, whitespace-separated\n")
        f.write("# columns: name ta M N K layout lda ldb ldc za nzb zb[nzb] na a[na] nb b[nb] acc[M*N] ndq, then per "
                "dequantize variant: nscale scale[nscale] nbias bias[nbias] y[M*N]\n")
        for ci, c in enumerate(cases):
            stats["acc_beyond_2^24"] += int((np.abs(c.acc) > 2 ** 24).sum())
            variants = dequant_variants(rng, c, 4 if c.m * c.n <= 64 else 2, ci)
            parts = ["case%d:%s" % (ci, c.kind), c.ta, str(c.m), str(c.n), str(c.k), c.layout, str(c.lda), str(c.ldb),
                     str(c.ldc), str(c.za), counted_ints(c.zb), counted_ints(c.a_buf), counted_ints(c.b_buf),
                     ints(c.acc), str(len(variants))]
            for scales, bias in variants:
                y = dequantize(c, scales, bias, stats)
                parts += [counted_floats(scales), counted_floats(bias), " ".join(fh(v) for v in y)]
            f.write(" ".join(p for p in parts if p != "") + "\n")
    assert stats["fma_differs_from_unfused"] > 0 and stats["negative_zeros"] > 0 and stats["acc_beyond_2^24"] > 0
    print("%s: %d cases, %d bytes; %s" % (os.path.relpath(path), len(cases), os.path.getsize(path), stats))


if __name__ == "__main__":
    main()
