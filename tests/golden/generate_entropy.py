#!/usr/bin/python3
"""Reference cases for lowbit's histogram calibration methods (entropy / KL and percentile).

Run with Debian's python3 (numpy; no scipy, no torch needed):

    /usr/bin/python3 tests/golden/generate_entropy.py

It rewrites tests/golden/data/entropy_calibration.txt. Deterministic (fixed seeds).

entropy: a transcription of NVIDIA pytorch-quantization's
    pytorch_quantization/calib/histogram.py::_compute_amax_entropy
(TensorRT's entropy calibration, S. Migacz, "8-bit Inference with TensorRT", GTC 2017),
written here from its published description with the same numpy calls:
    bins = hist; bins[0] = bins[1]  (optional here: first_bin_as_second)
    for i in range(start_bin, len(bins) + 1, stride):
        space = np.linspace(0, i, num=nbins + 1)
        digitized = np.digitize(range(i), space) - 1; digitized[bins[:i] == 0] = -1
        Q[j] = (sum of bins of j's group) / (non-empty bins in the group), 0 for empty bins
        P = bins[:i]; P[-1] += sum(bins[i:])
        divergence = scipy.stats.entropy(P, Q)
    answer = the last i with the smallest divergence; threshold = bin_edges[i]
scipy is not installed here, so scipy.stats.entropy is reproduced as scipy defines it:
pk = 1.0 * pk / np.sum(pk), qk = 1.0 * qk / np.sum(qk), np.sum(rel_entr(pk, qk)) with
rel_entr(x, y) = x * log(x / y) (x > 0, y > 0), 0 (x == 0, y >= 0), inf otherwise, and log
the C library's (math.log, as scipy.special's C code calls). The fast path below builds Q
with np.bincount instead of the reference's Python loops (same float64 values: the sums are
of integers); check_literal() runs the literal loops on small cases and asserts equality.

percentile: ONNX Runtime HistogramCollector.compute_percentile on a histogram with
np.linspace(lo, hi, n + 1) float32 edges: cdf = np.cumsum(hist / total);
symmetric: edge[np.searchsorted(cdf, p / 100)]; asymmetric: cut = (100 - p) / 200,
edges at np.searchsorted(cdf, cut) and np.searchsorted(cdf, 1 - cut) (before ORT's clamp to
the data min / max, which lowbit applies only when the view gives them).
"""

import math
import os
import sys
from collections import Counter

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "data")


def rel_entr(x, y):
    if math.isnan(x) or math.isnan(y):
        return math.nan
    if x > 0 and y > 0:
        return x * math.log(x / y)
    if x == 0 and y >= 0:
        return 0.0
    return math.inf


def scipy_entropy(pk, qk):
    pk = np.asarray(pk)
    pk = 1.0 * pk / np.sum(pk, axis=0, keepdims=True)
    qk = np.asarray(qk)
    qk = 1.0 * qk / np.sum(qk, axis=0, keepdims=True)
    vec = np.array([rel_entr(float(a), float(b)) for a, b in zip(pk, qk)], dtype=np.float64)
    return float(np.sum(vec, axis=0))


def divergences_fast(hist, nbins, start_bin, stride, first_as_second):
    bins = np.array(hist, dtype=np.int64)
    if first_as_second and len(bins) >= 2:
        bins[0] = bins[1]
    out = []
    for i in range(start_bin, len(bins) + 1, stride):
        space = np.linspace(0, i, num=nbins + 1)
        dig = np.digitize(range(i), space) - 1
        nz = bins[:i] != 0
        sums = np.bincount(dig[nz], weights=bins[:i][nz].astype(np.float64), minlength=nbins)
        cnt = np.bincount(dig[nz], minlength=nbins)
        dens = np.zeros(nbins, dtype=np.float64)
        dens[cnt > 0] = sums[cnt > 0] / cnt[cnt > 0]
        new_density = np.where(nz, dens[dig], 0.0)
        reference = np.array(bins[:i])
        reference[-1] += np.sum(bins[i:])
        out.append((i, scipy_entropy(reference, new_density)))
    return out


def divergences_literal(hist, nbins, start_bin, stride, first_as_second):
    """The reference's loops, statement for statement."""
    bins = np.array(hist, dtype=np.int64)
    if first_as_second and len(bins) >= 2:
        bins[0] = bins[1]
    out = []
    new_density_counts = np.zeros(nbins, dtype=np.float64)
    for i in range(start_bin, len(bins) + 1, stride):
        new_density_counts.fill(0)
        space = np.linspace(0, i, num=nbins + 1)
        digitized_space = np.digitize(range(i), space) - 1
        digitized_space[bins[:i] == 0] = -1
        for idx, digitized in enumerate(digitized_space):
            if digitized != -1:
                new_density_counts[digitized] += bins[idx]
        counter = Counter(digitized_space)
        for key, val in counter.items():
            if key != -1:
                new_density_counts[key] = new_density_counts[key] / val
        new_density = np.zeros(i, dtype=np.float64)
        for idx, digitized in enumerate(digitized_space):
            if digitized != -1:
                new_density[idx] = new_density_counts[digitized]
        reference_density = np.array(bins[: len(digitized_space)])
        reference_density[-1] += np.sum(bins[i:])
        out.append((i, scipy_entropy(reference_density, new_density)))
    return out


def last_argmin(divs):
    d = np.array([v for _, v in divs])
    k = len(d) - 1 - int(np.argmin(d[::-1]))
    return k


def check_literal():
    rng = np.random.default_rng(7)
    for n, nb, start, stride in ((200, 16, 16, 1), (300, 10, 20, 3), (150, 7, 7, 1)):
        h = rng.integers(0, 50, n)
        h[rng.random(n) < 0.3] = 0
        h[1] = max(h[1], 1)
        for first in (True, False):
            a = divergences_fast(h, nb, start, stride, first)
            b = divergences_literal(h, nb, start, stride, first)
            assert all(x[0] == y[0] and (x[1] == y[1] or (math.isnan(x[1]) and math.isnan(y[1])))
                       for x, y in zip(a, b)), (n, nb)


def pairwise_check():
    """np.sum of float64 is numpy's pairwise summation (lowbit emulates it)."""

    def pw(a):
        n = len(a)
        if n < 8:
            r = 0.0
            for v in a:
                r += v
            return r
        if n <= 128:
            r = [float(v) for v in a[:8]]
            i = 8
            while i < n - n % 8:
                for k in range(8):
                    r[k] += a[i + k]
                i += 8
            res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
            while i < n:
                res += a[i]
                i += 1
            return res
        n2 = n // 2
        n2 -= n2 % 8
        return pw(a[:n2]) + pw(a[n2:])

    rng = np.random.default_rng(3)
    for n in list(range(0, 300)) + [511, 1000, 2047, 2048, 2049, 4099]:
        a = rng.random(n) * 10.0 ** rng.integers(-5, 5, n)
        assert float(np.sum(a)) == 0.0 + pw([float(v) for v in a]), n


def f32hex(v):
    return float(np.float32(v)).hex()


def hist_of(values, n):
    h, _ = np.histogram(values, bins=n, range=(0.0, float(values.max())))
    return h.astype(np.int64)


def entropy_cases():
    rng = np.random.default_rng(20240601)
    cases = []  # (name, counts, nbins, start_bin, stride, first_as_second)
    cases.append(("gaussian", hist_of(np.abs(rng.standard_normal(400_000)), 2048), 128, 128, 1, True))
    cases.append(("laplace", hist_of(np.abs(rng.laplace(size=300_000)), 2048), 128, 128, 1, True))
    relu = np.maximum(rng.standard_normal(300_000), 0.0)
    cases.append(("relu", hist_of(relu, 2048), 128, 128, 1, True))
    cases.append(("relu_keep_bin0", hist_of(relu, 2048), 128, 128, 1, False))
    cases.append(("relu_unsigned", hist_of(relu, 2048), 256, 256, 1, True))
    cases.append(("uniform", hist_of(rng.random(200_000), 1024), 128, 128, 1, True))
    tail = np.concatenate([np.abs(rng.standard_normal(200_000)) * 0.1, rng.random(60) * 20.0])
    cases.append(("thin_tail", hist_of(tail, 2048), 128, 128, 1, True))
    cases.append(("student_t3", hist_of(np.abs(rng.standard_t(3, 250_000)), 2048), 128, 128, 1, True))
    cases.append(("stride4_start200", hist_of(np.abs(rng.standard_normal(100_000)), 1536), 128, 200, 4, True))
    cases.append(("nb127", hist_of(np.abs(rng.standard_normal(100_000)), 1000), 127, 127, 1, True))
    cases.append(("nb100_start50", hist_of(np.abs(rng.laplace(size=80_000)), 700), 100, 50, 1, True))
    cases.append(("s4_nb8", hist_of(np.abs(rng.standard_normal(50_000)), 256), 8, 8, 1, True))
    cases.append(("u4_nb16", hist_of(np.abs(rng.laplace(size=50_000)), 512), 16, 16, 1, True))
    gaps = hist_of(np.abs(rng.standard_normal(100_000)), 1024)
    gaps[rng.random(1024) < 0.25] = 0
    gaps[1] = max(gaps[1], 1)
    cases.append(("gaps", gaps, 128, 128, 1, True))
    first128 = np.zeros(2048, dtype=np.int64)
    first128[:128] = rng.integers(1, 1000, 128)
    cases.append(("mass_in_first_128", first128, 128, 128, 1, True))
    big = hist_of(np.abs(rng.standard_normal(200_000)), 2048) * 40_000 + rng.integers(0, 3, 2048)
    cases.append(("large_counts", big, 128, 128, 1, True))
    cases.append(("start_after_nb", hist_of(np.abs(rng.standard_normal(60_000)), 600), 64, 300, 7, True))
    return cases


def percentile_cases():
    rng = np.random.default_rng(99)
    out = []
    pcts = [99.999, 99.99, 99.9, 99.0, 90.0, 50.0, 100.0, 0.0, 99.9999, 0.001]
    for c in range(160):
        n = int(rng.choice([1, 2, 3, 8, 16, 64, 128, 2048]))
        top = int(rng.choice([2, 10, 1000, 10 ** 9])) if n <= 128 else int(rng.choice([2, 10]))
        h = rng.integers(0, top, n).astype(np.int64)
        if h.sum() == 0:
            h[int(rng.integers(0, n))] = 1
        if c % 5 == 0 and n > 4:  # a heavy bulk and a thin tail: the cut lands in the tail
            h[: n // 4] *= 10 ** 6
        lo = float(np.float32(rng.choice([0.0, -1.0, -3.5, 0.25]) * float(rng.random() * 4)))
        hi = float(np.float32(lo + 0.01 + rng.random() * 10.0))
        p = float(pcts[c % len(pcts)])
        out.append((n, lo, hi, p, h))
    # p / 100 rounding exactly at a cumulative fraction
    out.append((4, 0.0, 4.0, 75.0, np.array([1, 1, 1, 1], dtype=np.int64)))
    out.append((10, 0.0, 1.0, 70.0, np.ones(10, dtype=np.int64)))
    out.append((3, 0.0, 3.0, 100.0, np.array([1, 1, 1], dtype=np.int64)))
    return out


def main():
    check_literal()
    pairwise_check()
    os.makedirs(DATA, exist_ok=True)
    lines = []
    lines.append("# generated by tests/golden/generate_entropy.py with numpy %s; do not edit, regenerate with "
                 "/usr/bin/python3 tests/golden/generate_entropy.py" % np.__version__)
    lines.append("# entropy: pytorch-quantization _compute_amax_entropy (TensorRT entropy calibration) transcribed in")
    lines.append("# numpy, scipy.stats.entropy reproduced with math.log (see the generator's docstring).")
    lines.append("# lowbit: calibration::entropy_threshold(counts, {num_quantized_bins, start_bin, stride,")
    lines.append("# first_bin_as_second}) -> index (exact) and divergence (double).")
    lines.append("# columns: entropy name n num_quantized_bins start_bin stride first_bin_as_second counts[n] best_index")
    lines.append("#   best_divergence runner_up_index runner_up_divergence m (index divergence)[m]   (divergences: float.hex of")
    lines.append("#   the double; runner-up = smallest divergence at another index; m sampled candidates)")
    lines.append("# percentile: ONNX Runtime compute_percentile before its min/max clamp, edges np.linspace(lo, hi, n + 1)")
    lines.append("#   as float32. lowbit: calibration::percentile_index / percentile_symmetric / percentile_asymmetric.")
    lines.append("# columns: percentile n lo hi p counts[n] idx idx_left idx_right edge[idx] edge[idx_left] edge[idx_right]")
    lines.append("#   (lo, hi, p: float.hex of doubles; edges: float.hex of float32)")
    gaps = []
    for name, counts, nb, start, stride, first in entropy_cases():
        divs = divergences_fast(counts, nb, start, stride, first)
        k = last_argmin(divs)
        best_i, best_d = divs[k]
        others = [(i, d) for j, (i, d) in enumerate(divs) if j != k]
        run_i, run_d = min(others, key=lambda t: (t[1], -t[0])) if others else (best_i, best_d)
        gaps.append((name, best_i, best_d, run_d))
        if len(divs) <= 300:
            sample = divs
        else:
            keep = set(range(0, len(divs), max(1, len(divs) // 64))) | {len(divs) - 1}
            keep |= {j for j in range(k - 3, k + 4) if 0 <= j < len(divs)}
            sample = [divs[j] for j in sorted(keep)]
        cols = ["entropy", name, str(len(counts)), str(nb), str(start), str(stride), "1" if first else "0"]
        cols += [str(int(v)) for v in counts]
        cols += [str(best_i), float(best_d).hex(), str(run_i), float(run_d).hex(), str(len(sample))]
        for i, d in sample:
            cols += [str(i), float(d).hex()]
        lines.append(" ".join(cols))
    for n, lo, hi, p, h in percentile_cases():
        edges = np.linspace(lo, hi, n + 1).astype(np.float32)
        total = h.sum()
        cdf = np.cumsum(h / total)
        idx = int(np.searchsorted(cdf, p / 100.0))
        cut = (100.0 - p) / 200.0
        il = int(np.searchsorted(cdf, cut))
        ir = int(np.searchsorted(cdf, 1.0 - cut))
        cols = ["percentile", str(n), float(lo).hex(), float(hi).hex(), float(p).hex()]
        cols += [str(int(v)) for v in h]
        cols += [str(idx), str(il), str(ir), f32hex(edges[idx]), f32hex(edges[il]), f32hex(edges[ir])]
        lines.append(" ".join(cols))
    path = os.path.join(DATA, "entropy_calibration.txt")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote %s (%d bytes)" % (path, os.path.getsize(path)))
    for name, i, d, r in gaps:
        print("  %-18s best i=%5d div=%.17g runner-up=%.17g rel gap=%.3g" % (name, i, d, r, (r - d) / max(d, 1e-300)))


if __name__ == "__main__":
    sys.exit(main())
