#!/usr/bin/python3
"""lowbit's SIMD kernels and observers next to PyTorch's quantization ops, single thread.

Times torch.quantize_per_tensor / quantize_per_channel / dequantize /
fake_quantize_per_tensor_affine / fake_quantize_per_channel_affine (forward, and forward +
backward) and the observers' aminmax / histc at 64Ki, 1Mi and 16Mi elements, runs
bench_kernels for the matching lowbit benchmarks (JSON, medians of repetitions), and prints

    op | elements | torch Gelem/s | lowbit Gelem/s | lowbit / torch | lowbit frac of stream

Both sides are timed in thread CPU time by default (Google Benchmark's cpu_time and
time.thread_time here), which leaves out the time the process spends descheduled on a
shared machine; --wall uses wall-clock time on both sides instead.

"forward + backward" is, for torch, one autograd forward and y.backward(dy) (torch's
fake-quant saves the mask in the forward); for lowbit, the forward that also writes the mask
plus the backward from that mask (fake_quantize_f32_mask + fake_quantize_backward_masked_f32),
times added. Its fraction of stream is the two stream times over the two kernel times.

Observers (second part): torch.ao.quantization's MinMaxObserver, MovingAverageMinMaxObserver,
PerChannelMinMaxObserver(ch_axis=0) on a [256, n / 256] tensor and HistogramObserver (forward,
each called repeatedly on the same batch: the steady state) next to bench_observers' observe
rows, and HistogramObserver.calculate_qparams (2048 bins, after one 1Mi N(0, 1) batch) next to
bench_observers' qparams rows:

    observer | elements | torch Gelem/s | lowbit Gelem/s | lowbit / torch | lowbit frac of stream
    qparams  | torch ms | lowbit ms | torch / lowbit

QAT (third part): forward + backward through autograd (x, and the learnable ops' scale and
zero point, requires_grad; y.backward(dy)) of torch.fake_quantize_per_tensor_affine (u8,
scale 0.03, zero point 131), fake_quantize_per_channel_affine (s8, [256, n / 256], axis 0),
_fake_quantize_learnable_per_tensor_affine / _per_channel_affine (LSQ, grad factor
1 / sqrt(n * qmax)), torch.ao.quantization.FakeQuantize() (observer on), and the forward of
torch.fused_moving_avg_obs_fake_quant, next to bench_quant's rows (one line per lowbit row):

    QAT op | elements | torch Gelem/s | lowbit Gelem/s | lowbit / torch | lowbit frac of stream

Usage (PyTorch 1.13 from Debian; use the system interpreter):
    /usr/bin/python3 benchmarks/compare_torch.py [build/release/benchmarks/bench_kernels]
        [--observers-bin build/release/benchmarks/bench_observers]
        [--quant-bin build/release/benchmarks/bench_quant]
        [--markdown out.md] [--json kernels.json] [--observers-json observers.json]
        [--quant-json quant.json] [--only kernels|observers|quant] [--repetitions 5] [--wall]
--json / --observers-json / --quant-json read a bench_kernels / bench_observers / bench_quant
JSON output (with --benchmark_repetitions) instead of running the program.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import timeit

import torch

SIZES = [1 << 16, 1 << 20, 1 << 24]
CHANNELS = 256  # per-channel ops: a [256, n / 256] tensor, axis 0 (as bench_kernels)
SCALE, ZP = 0.03, 3  # qint8 (as bench_kernels' qp_s8)


def size_label(n):
    return f"{n >> 20}Mi" if n >= 1 << 20 else f"{n >> 10}Ki"


def time_torch(fn, clock, min_seconds=0.05, repeats=7):
    """Median seconds per call: `repeats` batches of k calls, k chosen so a batch lasts
    at least min_seconds."""
    fn()  # warm up (allocations, first-call dispatch)
    k = 1
    while True:
        t0 = clock()
        for _ in range(k):
            fn()
        if clock() - t0 >= min_seconds or k >= 1 << 20:
            break
        k *= 2
    runs = timeit.Timer(fn, timer=clock).repeat(repeat=repeats, number=k)
    return statistics.median(runs) / k


def torch_inputs(n):
    """The tensors of the kernel and QAT cases for size n: x, dy (N(0, 1), in this order from one
    generator seeded 1), their [256, n / 256] views x2, dy2, and the per-channel scales and int32
    zero points of bench_kernels' and bench_quant's channel_params."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, generator=g)
    dy = torch.randn(n, generator=g)
    c = torch.arange(CHANNELS)
    scales = 0.02 + 0.0001 * (c % 97).to(torch.float32)
    zps32 = ((c % 11) - 5).to(torch.int32)
    return x, dy, x.view(CHANNELS, n // CHANNELS), dy.view(CHANNELS, n // CHANNELS), scales, zps32


def torch_cases(n):
    """(op name, callable) for size n; the tensors are built once per size."""
    x, dy, x2, dy2, scales, zps32 = torch_inputs(n)
    zps64 = zps32.to(torch.int64)
    xq = torch.quantize_per_tensor(x, SCALE, ZP, torch.qint8)
    xg = x.clone().requires_grad_()
    x2g = x2.clone().requires_grad_()

    def fq_fwd_bwd():
        y = torch.fake_quantize_per_tensor_affine(xg, SCALE, ZP, -128, 127)
        y.backward(dy)
        xg.grad = None

    def fq_pc_fwd_bwd():
        y = torch.fake_quantize_per_channel_affine(x2g, scales, zps32, 0, -128, 127)
        y.backward(dy2)
        x2g.grad = None

    return [
        ("quantize per-tensor s8", lambda: torch.quantize_per_tensor(x, SCALE, ZP, torch.qint8)),
        ("quantize per-tensor u8", lambda: torch.quantize_per_tensor(x, SCALE, 131, torch.quint8)),
        ("quantize per-channel s8 (axis 0)", lambda: torch.quantize_per_channel(x2, scales, zps64, 0, torch.qint8)),
        ("dequantize s8", lambda: xq.dequantize()),
        ("fake_quantize fwd", lambda: torch.fake_quantize_per_tensor_affine(x, SCALE, ZP, -128, 127)),
        ("fake_quantize fwd+bwd", fq_fwd_bwd),
        ("fake_quantize per-channel fwd",
         lambda: torch.fake_quantize_per_channel_affine(x2, scales, zps32, 0, -128, 127)),
        ("fake_quantize per-channel fwd+bwd", fq_pc_fwd_bwd),
        ("min/max (aminmax)", lambda: torch.aminmax(x)),
        ("min/max per-channel (axis 0)", lambda: torch.aminmax(x2, dim=1)),
        ("histogram 2048 bins (histc)", lambda: torch.histc(x, 2048, -5.0, 5.0)),
    ]


# torch op -> the lowbit benchmarks whose times add up to the same work.
LOWBIT = {
    "quantize per-tensor s8": ["quantize_f32_s8"],
    "quantize per-tensor u8": ["quantize_f32_u8"],
    "quantize per-channel s8 (axis 0)": ["quantize_f32_s8_per_channel_outer"],
    "dequantize s8": ["dequantize_s8_f32"],
    "fake_quantize fwd": ["fake_quantize_f32"],
    "fake_quantize fwd+bwd": ["fake_quantize_f32_mask", "fake_quantize_backward_masked_f32"],
    "fake_quantize per-channel fwd": ["fake_quantize_f32_per_channel_outer"],
    "fake_quantize per-channel fwd+bwd": ["fake_quantize_f32_per_channel_outer_mask",
                                          "fake_quantize_backward_masked_f32"],
    "min/max (aminmax)": ["min_max_f32"],
    "min/max per-channel (axis 0)": ["min_max_f32_per_channel_outer"],
    "histogram 2048 bins (histc)": ["histogram_f32_2048"],
}

UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}

QPARAMS_BATCH = 1 << 20  # the qparams rows observe one batch of this size first (as bench_observers)


def torch_observer_cases(n):
    """(observer row, callable) for size n: each observer is fed the same batch repeatedly."""
    from torch.ao.quantization import (HistogramObserver, MinMaxObserver, MovingAverageMinMaxObserver,
                                       PerChannelMinMaxObserver)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, generator=g)
    x2 = x.view(CHANNELS, n // CHANNELS)
    mm = MinMaxObserver()
    mam = MovingAverageMinMaxObserver()
    pc = PerChannelMinMaxObserver(ch_axis=0)
    hist = HistogramObserver()  # 2048 bins, quint8 (bench_observers: u8, 2048 bins)
    return [
        ("MinMaxObserver", lambda: mm(x)),
        ("MovingAverageMinMaxObserver", lambda: mam(x)),
        ("PerChannelMinMaxObserver(ch_axis=0)", lambda: pc(x2)),
        ("HistogramObserver forward", lambda: hist(x)),
    ]


# torch observer row -> [(label, bench_observers benchmark)]: one table line per pair.
LOWBIT_OBSERVERS = {
    "MinMaxObserver": [("", "minmax/observe")],
    "MovingAverageMinMaxObserver": [("", "moving_average_minmax/observe")],
    "PerChannelMinMaxObserver(ch_axis=0)": [("", "per_channel_minmax/observe")],
    "HistogramObserver forward": [(" [lowbit torch_1_13 mode]", "histogram_torch_1_13/observe"),
                                  (" [lowbit corrected mode]", "histogram/observe")],
}
LOWBIT_QPARAMS = [(" [lowbit torch_1_13 mode]", "histogram_torch_1_13/qparams"),
                  (" [lowbit corrected mode]", "histogram/qparams")]


QUANT_SCALE, QUANT_ZP = 0.03, 131  # u8 per tensor (as bench_quant)


def torch_quant_cases(n):
    """(QAT row, callable) for size n: forward + backward through autograd (the fused op:
    forward only). The tensors are built once per size."""
    import math
    from torch.ao.quantization import FakeQuantize
    x, dy, x2, dy2, scales, zps32 = torch_inputs(n)
    xg = x.clone().requires_grad_()
    x2g = x2.clone().requires_grad_()
    s_t = torch.tensor([QUANT_SCALE], requires_grad=True)
    z_t = torch.tensor([float(QUANT_ZP)], requires_grad=True)
    s_c = scales.clone().requires_grad_()
    z_c = zps32.to(torch.float32).requires_grad_()
    g_t = 1.0 / math.sqrt(n * 255)  # LSQ's grad scaling (bench_quant: lsq_grad_factor(n, qmax))
    g_c = 1.0 / math.sqrt(n * 127)
    fq_mod = FakeQuantize()  # MovingAverageMinMaxObserver, quint8 0..255, observer on
    fq_mod(x)  # first batch sets the range (bench_quant does the same, untimed)
    on = torch.tensor([1], dtype=torch.long)
    run_min, run_max = torch.tensor(float("inf")), torch.tensor(float("-inf"))
    f_scale, f_zp = torch.tensor([1.0]), torch.tensor([0], dtype=torch.int32)

    def zero(*ts):
        for t in ts:
            t.grad = None

    def fq():
        torch.fake_quantize_per_tensor_affine(xg, QUANT_SCALE, QUANT_ZP, 0, 255).backward(dy)
        zero(xg)

    def fq_pc():
        torch.fake_quantize_per_channel_affine(x2g, scales, zps32, 0, -128, 127).backward(dy2)
        zero(x2g)

    def fq_module():
        fq_mod(xg).backward(dy)
        zero(xg)

    def lsq():
        torch._fake_quantize_learnable_per_tensor_affine(xg, s_t, z_t, 0, 255, g_t).backward(dy)
        zero(xg, s_t, z_t)

    def lsq_pc():
        torch._fake_quantize_learnable_per_channel_affine(x2g, s_c, z_c, 0, -128, 127, g_c).backward(dy2)
        zero(x2g, s_c, z_c)

    def fused():
        torch.fused_moving_avg_obs_fake_quant(x, on, on, run_min, run_max, f_scale, f_zp, 0.01, 0, 255, 0,
                                              False, False)

    return [
        ("fake_quantize_per_tensor_affine u8 fwd+bwd", fq),
        ("fake_quantize_per_channel_affine s8 fwd+bwd", fq_pc),
        ("FakeQuantize() module (observer on) fwd+bwd", fq_module),
        ("_fake_quantize_learnable_per_tensor_affine fwd+bwd", lsq),
        ("_fake_quantize_learnable_per_channel_affine fwd+bwd", lsq_pc),
        ("fused_moving_avg_obs_fake_quant fwd", fused),
    ]


# torch QAT row -> [(label, bench_quant benchmark)]: one table line per pair.
LOWBIT_QUANT = {
    "fake_quantize_per_tensor_affine u8 fwd+bwd": [(" [lowbit module, kept mask]", "fake_quantize_module/fwd_bwd_mask"),
                                                   (" [lowbit module, recompute]",
                                                    "fake_quantize_module/fwd_bwd_recompute")],
    "fake_quantize_per_channel_affine s8 fwd+bwd": [
        (" [lowbit module, kept mask]", "fake_quantize_module_per_channel/fwd_bwd_mask"),
        (" [lowbit module, recompute]", "fake_quantize_module_per_channel/fwd_bwd_recompute")],
    "FakeQuantize() module (observer on) fwd+bwd": [(" [kept mask]", "fake_quantize_module_observing/fwd_bwd_mask")],
    "_fake_quantize_learnable_per_tensor_affine fwd+bwd": [("", "lsq/fwd_bwd")],
    "_fake_quantize_learnable_per_channel_affine fwd+bwd": [("", "lsq_per_channel/fwd_bwd")],
    "fused_moving_avg_obs_fake_quant fwd": [(" [with mask]", "fused_moving_avg_obs_fake_quant/fwd_mask")],
}


def run_bench(binary, names, repetitions, end="/"):
    """Runs a Google Benchmark program on the benchmarks `names` (each followed by `end` in the
    filter: "/" takes the sized rows name/<n>) and returns its JSON (aggregates of repetitions)."""
    pattern = "^(" + "|".join(re.escape(n) for n in sorted(names)) + ")" + end
    fd, path = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    cmd = [binary, f"--benchmark_filter={pattern}", f"--benchmark_repetitions={repetitions}",
           "--benchmark_report_aggregates_only=true", f"--benchmark_out={path}", "--benchmark_out_format=json"]
    print("running:", " ".join(cmd), file=sys.stderr)
    subprocess.run(cmd, check=True, stdout=sys.stderr)
    with open(path) as f:
        data = json.load(f)
    os.unlink(path)
    return data


def lowbit_results(data, wall):
    """{(benchmark name, n): (seconds per call, frac_of_stream)} from medians (or single runs)."""
    out = {}
    for b in data["benchmarks"]:
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        if b.get("error_occurred"):
            continue
        parts = b["run_name"].split("/")  # name[/sub]/n[/real_time]
        if parts[-1] == "real_time":
            parts = parts[:-1]
        if parts[-1].isdigit():
            name, n = "/".join(parts[:-1]), int(parts[-1])
        else:  # an unsized row (bench_observers' <observer>/qparams)
            name, n = "/".join(parts), None
        t = (b["real_time"] if wall else b["cpu_time"]) * UNIT_SECONDS[b["time_unit"]]
        key = (name, n)
        if b.get("run_type") == "aggregate" or key not in out:
            out[key] = (t, b.get("frac_of_stream"))
    return out


def format_table(header, table):
    widths = [max(len(h), *(len(r[i]) for r in table)) for i, h in enumerate(header)]
    fmt = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
    return [fmt(header), "  ".join("-" * w for w in widths)] + [fmt(r) for r in table]


def markdown_table(header, table):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    return lines + ["| " + " | ".join(r) + " |" for r in table]


def throughput_row(op, n, t_torch, parts):
    """One line: torch seconds per call; parts = [(lowbit seconds, frac_of_stream)] or None."""
    g_torch = n / t_torch / 1e9
    g_low = frac = None
    if parts is not None and None not in parts:
        t_low = sum(t for t, _ in parts)
        g_low = n / t_low / 1e9
        if None not in [f for _, f in parts]:  # stream time = kernel time * frac
            frac = sum(t * f for t, f in parts) / t_low
    return [op, size_label(n), f"{g_torch:.3f}", f"{g_low:.2f}" if g_low else "-",
            f"{g_low / g_torch:.1f}x" if g_low else "-", f"{frac:.2f}" if frac is not None else "-"]


def lowbit_and_torch(args, clock, json_path, binary, names, cases, end="/"):
    """lowbit's results (lowbit_results of the JSON file json_path, or of running `binary` on the
    benchmarks `names`) and torch's seconds per call {(op, n): s} of every cases(n), n in SIZES."""
    if json_path:
        with open(json_path) as f:
            data = json.load(f)
    else:
        data = run_bench(binary, names, args.repetitions, end)
    lowbit = lowbit_results(data, args.wall)

    torch_seconds = {}
    for n in SIZES:
        for op, fn in cases(n):
            print(f"torch: {op} {size_label(n)}", file=sys.stderr)
            torch_seconds[(op, n)] = time_torch(fn, clock)
    return lowbit, torch_seconds


def throughput_table(first_column, rows, lowbit, torch_seconds):
    """(header, table) of throughput_row lines: rows = {torch op: [(label, [lowbit benchmarks whose
    times add up to the op])]}, one line per (op, label, size), op-major, sizes ascending."""
    header = [first_column, "elements", "torch Gelem/s", "lowbit Gelem/s", "lowbit / torch", "lowbit frac of stream"]
    table = []
    for op, pairs in rows.items():
        for label, benches in pairs:
            for n in SIZES:
                parts = [lowbit.get((b, n)) for b in benches]
                table.append(throughput_row(op + label, n, torch_seconds[(op, n)], parts))
    return header, table


def kernel_tables(args, clock):
    names = {b for bs in LOWBIT.values() for b in bs}
    lowbit, torch_seconds = lowbit_and_torch(args, clock, args.json, args.bench_kernels, names, torch_cases)
    return [throughput_table("op", {op: [("", benches)] for op, benches in LOWBIT.items()}, lowbit, torch_seconds)]


def single_benchmarks(pairs_by_op):
    """{op: [(label, benchmark)]} -> {op: [(label, [benchmark])]} for throughput_table."""
    return {op: [(label, [bench]) for label, bench in pairs] for op, pairs in pairs_by_op.items()}


def observer_tables(args, clock):
    names = {b for bs in LOWBIT_OBSERVERS.values() for _, b in bs} | {b for _, b in LOWBIT_QPARAMS}
    lowbit, torch_seconds = lowbit_and_torch(args, clock, args.observers_json, args.observers_bin, names,
                                             torch_observer_cases, end="(/|$)")
    header, table = throughput_table("observer", single_benchmarks(LOWBIT_OBSERVERS), lowbit, torch_seconds)

    from torch.ao.quantization import HistogramObserver
    g = torch.Generator().manual_seed(1)
    hist = HistogramObserver()
    hist(torch.randn(QPARAMS_BATCH, generator=g))
    print("torch: HistogramObserver.calculate_qparams", file=sys.stderr)
    t_torch = time_torch(hist.calculate_qparams, clock)
    qheader = ["qparams (2048 bins, after 1Mi N(0,1))", "torch ms", "lowbit ms", "torch / lowbit"]
    qtable = []
    for label, bench in LOWBIT_QPARAMS:
        r = lowbit.get((bench, None))
        t_low = r[0] if r else None
        qtable.append(["HistogramObserver.calculate_qparams" + label, f"{t_torch * 1e3:.3f}",
                       f"{t_low * 1e3:.4f}" if t_low else "-", f"{t_torch / t_low:.0f}x" if t_low else "-"])
    return [(header, table), (qheader, qtable)]


def quant_tables(args, clock):
    names = {b for bs in LOWBIT_QUANT.values() for _, b in bs}
    lowbit, torch_seconds = lowbit_and_torch(args, clock, args.quant_json, args.quant_bin, names, torch_quant_cases)
    return [throughput_table("QAT op", single_benchmarks(LOWBIT_QUANT), lowbit, torch_seconds)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bench_kernels", nargs="?", default="build/release/benchmarks/bench_kernels")
    ap.add_argument("--observers-bin", default="build/release/benchmarks/bench_observers",
                    help="the bench_observers program (default: %(default)s)")
    ap.add_argument("--quant-bin", default="build/release/benchmarks/bench_quant",
                    help="the bench_quant program (default: %(default)s)")
    ap.add_argument("--markdown", metavar="OUT.md", help="also write the tables as markdown")
    ap.add_argument("--json", metavar="FILE", help="read this bench_kernels JSON instead of running it")
    ap.add_argument("--observers-json", metavar="FILE", help="read this bench_observers JSON instead of running it")
    ap.add_argument("--quant-json", metavar="FILE", help="read this bench_quant JSON instead of running it")
    ap.add_argument("--only", choices=["kernels", "observers", "quant"],
                    help="compare only kernels, only observers or only the QAT ops")
    ap.add_argument("--repetitions", type=int, default=5)
    ap.add_argument("--wall", action="store_true", help="wall-clock time on both sides (default: thread CPU time)")
    args = ap.parse_args()

    torch.set_num_threads(1)
    clock = time.perf_counter if args.wall else time.thread_time

    tables = []
    if args.only in (None, "kernels"):
        tables += kernel_tables(args, clock)
    if args.only in (None, "observers"):
        tables += observer_tables(args, clock)
    if args.only in (None, "quant"):
        tables += quant_tables(args, clock)

    for i, (header, table) in enumerate(tables):
        if i:
            print()
        print("\n".join(format_table(header, table)))

    if args.markdown:
        clock_name = "wall-clock" if args.wall else "thread CPU"
        with open(args.markdown, "w") as f:
            f.write(f"Single thread, {clock_name} time, medians; torch {torch.__version__}.\n")
            for header, table in tables:
                f.write("\n" + "\n".join(markdown_table(header, table)) + "\n")
        print(f"markdown written to {args.markdown}", file=sys.stderr)


if __name__ == "__main__":
    main()
