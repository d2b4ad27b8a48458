#!/usr/bin/python3
"""Runs bench_gemm and prints its results as markdown tables.

    /usr/bin/python3 benchmarks/gemm_table.py build/release/benchmarks/bench_gemm

runs, pinned with `taskset -c 1` when taskset exists,

    bench_gemm --benchmark_format=json --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
    bench_gemm --onednn_max_isa=avx512_core_vnni --benchmark_filter=^onednn_s32/ (same flags)

(the second only when the binary has oneDNN rows: oneDNN takes an ISA limit only before its first
primitive, hence a second process) and prints, from the medians of the repetitions:

  1. int8 GEMM, one line per shape: lowbit's GOPS for each ISA, with the requantize-to-s8
     epilogue, oneDNN's GOPS (its default ISA and limited to avx512_core_vnni), lowbit / oneDNN,
     lowbit's avx512_vnni GOPS as a fraction of the measured vpdpbusd zmm peak, OpenBLAS's f32
     GFLOPS and the int8 / f32 speedup, and for M = 1 the fraction of the read bandwidth the
     GEMV gets on its weights (frac_of_stream: stream time / GEMV time over the same bytes);
  2. int4 weight-only GEMV: rows / s, weight GB/s, fraction of read bandwidth, and rows / s
     against lowbit's int8 GEMV of the same shape.

--save-json PREFIX keeps the two runs' JSON; --json / --json-vnni print from saved outputs (those,
or bench_gemm's own --benchmark_out=FILE).
"""
import argparse
import json
import shutil
import subprocess
import sys

ISA_ORDER = ["amx", "avx512_vnni", "avx_vnni", "avx512bw", "avx2", "scalar"]
VNNI_LIMIT = "avx512_core_vnni"


def run(binary, extra, repetitions, pin):
    cmd = []
    if pin and shutil.which("taskset"):
        cmd += ["taskset", "-c", "1"]
    cmd += [binary] + extra + ["--benchmark_format=json", "--benchmark_repetitions=%d" % repetitions,
                               "--benchmark_report_aggregates_only=true"]
    print("running: " + " ".join(cmd), file=sys.stderr)
    out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE).stdout
    return " ".join(cmd), json.loads(out)


def medians(doc):
    """run_name -> entry of its median (or the single run without repetitions); errors apart."""
    rows, errors = {}, {}
    for b in doc.get("benchmarks", []):
        name = b.get("run_name", b["name"])
        if b.get("error_occurred"):
            errors[name] = b.get("error_message", "error")
            continue
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        if b.get("run_type") == "aggregate" or name not in rows:
            rows[name] = b
    return rows, errors


def fmt(v, digits=1):
    return "-" if v is None else "%.*f" % (digits, v)


def ratio(a, b, digits=2):
    return "-" if a is None or b is None or b == 0 else "%.*f" % (digits, a / b)


def counter(rows, name, key):
    b = rows.get(name)
    return None if b is None else b.get(key)


def shape_key(shape):
    m, n, k = (int(x) for x in shape.split("x"))
    return (m != 1, m, n, k)


def tables(doc, doc_vnni):
    rows, errors = medians(doc)
    vrows, verrors = medians(doc_vnni) if doc_vnni else ({}, {})
    errors.update(verrors)
    ctx = doc.get("context", {})
    vctx = doc_vnni.get("context", {}) if doc_vnni else {}
    out = []

    # context
    peak_z = counter(rows, "vpdpbusd_peak/zmm", "GOPS")
    peak_y = counter(rows, "vpdpbusd_peak/ymm", "GOPS")
    peak_yv = counter(rows, "vpdpbusd_peak/ymm_avx_vnni", "GOPS")
    out.append("Machine: %s CPUs at %s MHz (Google Benchmark's context), %s; lowbit best ISA: int8 %s, int4 %s." % (
        ctx.get("num_cpus", "?"), ctx.get("mhz_per_cpu", "?"), ctx.get("date", "?"),
        ctx.get("lowbit_gemm_best_isa", "?"), ctx.get("lowbit_int4_best_isa", "?")))
    out.append("vpdpbusd peak (12 independent accumulators): zmm %s GOPS, ymm (EVEX) %s GOPS%s." % (
        fmt(peak_z), fmt(peak_y), "" if peak_yv is None else ", ymm (AVX-VNNI) %s GOPS" % fmt(peak_yv)))
    if "onednn_version" in ctx:
        out.append("oneDNN %s, runtime %s, %s thread(s); effective ISA: %s by default, %s with set_max_cpu_isa(%s)." % (
            ctx["onednn_version"], ctx.get("onednn_cpu_runtime", "?"), ctx.get("onednn_threads", "?"),
            ctx.get("onednn_isa", "?"), vctx.get("onednn_isa", "-"), VNNI_LIMIT))
    if "openblas_config" in ctx:
        out.append("OpenBLAS: %s, %s thread(s)." % (ctx["openblas_config"], ctx.get("openblas_threads", "?")))
    out.append("")

    # 1. int8 GEMM
    shapes = sorted({n.split("/")[-1] for n in rows if n.startswith("lowbit_s32/")}, key=shape_key)
    isas = [i for i in ISA_ORDER if any(n.startswith("lowbit_s32/%s/" % i) for n in rows)]
    best = ctx.get("lowbit_gemm_best_isa", isas[0] if isas else "")
    od_default = "onednn_s32/default/%s"
    od_vnni = "onednn_s32/%s/%%s" % VNNI_LIMIT
    head = ["shape MxNxK"] + ["lowbit %s GOPS" % i for i in isas] + [
        "lowbit %s + requant s8 GOPS" % best, "oneDNN GOPS", "oneDNN %s GOPS" % VNNI_LIMIT, "lowbit/oneDNN",
        "VNNI frac of peak", "f32 GFLOPS", "int8/f32", "M=1: frac of read BW (weights GB/s / stream GB/s)"]
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "---|" * len(head))
    for sh in shapes:
        g = {i: counter(rows, "lowbit_s32/%s/%s" % (i, sh), "GOPS") for i in isas}
        lb = g.get(best)
        rq = counter(rows, "lowbit_s8_requant/%s/%s" % (best, sh), "GOPS")
        od = counter(rows, od_default % sh, "GOPS")
        odv = counter(vrows, od_vnni % sh, "GOPS")
        f32 = counter(rows, "openblas_sgemm/" + sh, "GFLOPS")
        f32v = counter(rows, "openblas_sgemv/" + sh, "GFLOPS")
        f32_cell = fmt(f32)
        if f32v is not None and (f32 is None or f32v > f32):
            f32, f32_cell = f32v, fmt(f32v) + " (sgemv)"
        vnni = g.get("avx512_vnni")
        bw = "-"
        if sh.startswith("1x"):
            name = "lowbit_s32/%s/%s" % (best, sh)
            bw = "%s (%s / %s)" % (fmt(counter(rows, name, "frac_of_stream"), 2),
                                   fmt(counter(rows, name, "weight_GBps")), fmt(counter(rows, name, "stream_GBps")))
        cells = [sh] + [fmt(g[i]) for i in isas] + [fmt(rq), fmt(od), fmt(odv), ratio(lb, od), ratio(vnni, peak_z),
                                                    f32_cell, ratio(lb, f32, 1), bw]
        out.append("| " + " | ".join(cells) + " |")
    out.append("")

    # 2. int4 GEMV
    i4 = sorted(n for n in rows if n.startswith("int4_"))
    if i4:
        head = ["shape MxNxK", "int4 kernel", "rows/s (millions)", "weight GB/s", "frac of read BW", "int8 %s rows/s (millions)" % best,
                "int4/int8 rows/s"]
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "---|" * len(head))
        for n in sorted(i4, key=lambda x: (shape_key(x.split("/")[-1]), x)):
            kind, group, sh = n.split("/")
            r4 = counter(rows, n, "rows_per_second")
            r8 = counter(rows, "lowbit_s32/%s/%s" % (best, sh), "rows_per_second")
            cells = [sh, "%s %s" % (kind, group), fmt(None if r4 is None else r4 * 1e-6, 2),
                     fmt(counter(rows, n, "weight_GBps")), fmt(counter(rows, n, "frac_of_stream"), 2),
                     fmt(None if r8 is None else r8 * 1e-6, 2), ratio(r4, r8)]
            out.append("| " + " | ".join(cells) + " |")
        out.append("")

    for name, msg in sorted(errors.items()):
        out.append("error in %s: %s" % (name, msg))
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("binary", nargs="?", help="path of bench_gemm (not needed with --json)")
    ap.add_argument("--json", help="reuse this bench_gemm JSON output instead of running the binary")
    ap.add_argument("--json-vnni", help="reuse the --onednn_max_isa=%s run's JSON output" % VNNI_LIMIT)
    ap.add_argument("--repetitions", type=int, default=3)
    ap.add_argument("--no-taskset", action="store_true", help="do not pin with taskset -c 1")
    ap.add_argument("--filter", help="--benchmark_filter for the first run (default: every row)")
    ap.add_argument("--smoke", action="store_true", help="pass --smoke (tiny shapes) to the binary")
    ap.add_argument("--markdown", help="also write the tables to this file")
    ap.add_argument("--save-json", metavar="PREFIX", help="write the runs' JSON to PREFIX.json and PREFIX_vnni.json")
    args = ap.parse_args()
    if not args.json and not args.binary:
        ap.error("give the bench_gemm binary or --json")

    commands = []
    extra = (["--smoke"] if args.smoke else []) + (["--benchmark_filter=" + args.filter] if args.filter else [])
    if args.json:
        with open(args.json) as f:
            doc = json.load(f)
    else:
        cmd, doc = run(args.binary, extra, args.repetitions, not args.no_taskset)
        commands.append(cmd)
    doc_vnni = None
    if args.json_vnni:
        with open(args.json_vnni) as f:
            doc_vnni = json.load(f)
    elif args.binary and "onednn_version" in doc.get("context", {}):
        cmd, doc_vnni = run(args.binary, (["--smoke"] if args.smoke else []) + [
            "--onednn_max_isa=" + VNNI_LIMIT, "--benchmark_filter=^onednn_s32/"], args.repetitions,
                            not args.no_taskset)
        commands.append(cmd)

    if args.save_json:
        for suffix, d in (("", doc), ("_vnni", doc_vnni)):
            if d is not None:
                with open(args.save_json + suffix + ".json", "w") as f:
                    json.dump(d, f, indent=1)
    text = tables(doc, doc_vnni)
    if commands:
        text = "Commands:\n\n" + "\n".join("    " + c for c in commands) + "\n\n" + text
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
