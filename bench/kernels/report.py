#!/usr/bin/env python3
"""Turns the Google Benchmark JSON of bench/kernels/gemm_bench.cpp (one file per library, medians of the
repetitions) into bench/results/kernels.md (GFLOP/s, % of the measured peak, ratios vs OpenBLAS and oneDNN)
and bench/results/kernels.png."""
import argparse
import json
import os
import pathlib
import re

LIBS = ["fnn", "openblas", "onednn"]


def load(results_dir):
    rows = {}  # (lib, shape, threads) -> dict
    context = None
    for lib in ["peak"] + LIBS:
        path = results_dir / f"kernels_{lib}.json"
        if not path.exists():
            continue
        data = json.loads(path.read_text())
        context = context or data.get("context")
        for b in data["benchmarks"]:
            if b.get("aggregate_name") != "median":
                continue
            m = re.match(r"bm_(\w+)/M:(\d+)/K:(\d+)/N:(\d+)/threads:(\d+)", b["run_name"])
            if not m:
                continue
            scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[b["time_unit"]]
            lib_name, shape, threads = m.group(1), tuple(int(m.group(i)) for i in (2, 3, 4)), int(m.group(5))
            flop = b["flop"]
            rows[(lib_name, shape, threads)] = {
                "gflops": flop / (b["real_time"] * scale) * 1e-9,
                # Main-thread CPU time: the compute rate while scheduled (meaningful for 1 thread only).
                "gflops_cpu": flop / (b["cpu_time"] * scale) * 1e-9,
                "label": b.get("label", ""),
            }
    return rows, context


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results_dir", type=pathlib.Path)
    ap.add_argument("--load", default="?", help="load average when the benchmark ran")
    args = ap.parse_args()
    rows, context = load(args.results_dir)
    peak = {t: rows.get(("peak", (0, 0, 0), t), {}).get("gflops") for t in (1, 2)}
    shapes = sorted({k[1] for k in rows if k[0] != "peak"}, key=lambda s: -s[0] * s[1] * s[2])

    def fmt(x, f="{:.1f}"):
        return "—" if x is None else f.format(x)

    lines = ["# fp32 GEMM, Y[M x N] = X[M x K] W[N x K]^T", ""]
    if context:
        lines.append(f"Host: {context.get('num_cpus')} CPUs @ {context.get('mhz_per_cpu')} MHz, "
                     f"load average before the report {args.load}; median of 5 repetitions, min_time 0.2 s; "
                     f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', '(unset)')}; "
                     f"fnn arch: {rows.get(('fnn', shapes[0], 1), {}).get('label', '?')}.")
    lines.append("")
    lines.append(f"Measured FMA peak (xsimd, 24 independent chains): 1 thread {fmt(peak[1])} GFLOP/s, "
                 f"2 threads {fmt(peak[2])} GFLOP/s.")
    lines.append("")
    peak_cpu = rows.get(("peak", (0, 0, 0), 1), {}).get("gflops_cpu")
    lines.append(f"1-thread rates are also given from the benchmark thread's CPU time: on a machine shared with "
                 f"other jobs that is the rate while scheduled (1-thread CPU-time peak: {fmt(peak_cpu)} GFLOP/s), "
                 f"and % of peak / ratios use it. 2-thread rates can only use wall time.")
    lines.append("")
    lines.append("## 1 thread")
    lines.append("")
    lines.append("| M x K x N | fnn wall | OpenBLAS wall | oneDNN wall | fnn CPU | OpenBLAS CPU | oneDNN CPU "
                 "| fnn % peak (CPU) | fnn / OpenBLAS (CPU) | fnn / oneDNN (CPU) |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for s in shapes:
        g = {lib: rows.get((lib, s, 1), {}).get("gflops") for lib in LIBS}
        c = {lib: rows.get((lib, s, 1), {}).get("gflops_cpu") for lib in LIBS}
        pct = None if c["fnn"] is None or not peak_cpu else 100 * c["fnn"] / peak_cpu
        rb = None if None in (c["fnn"], c["openblas"]) else c["fnn"] / c["openblas"]
        rd = None if None in (c["fnn"], c["onednn"]) else c["fnn"] / c["onednn"]
        lines.append(f"| {s[0]}x{s[1]}x{s[2]} | {fmt(g['fnn'])} | {fmt(g['openblas'])} | {fmt(g['onednn'])} | "
                     f"{fmt(c['fnn'])} | {fmt(c['openblas'])} | {fmt(c['onednn'])} | {fmt(pct)} | "
                     f"{fmt(rb, '{:.2f}')} | {fmt(rd, '{:.2f}')} |")
    lines.append("")
    lines.append("## 2 threads (wall time)")
    lines.append("")
    lines.append("Only meaningful on an otherwise idle machine: the 2-thread / 1-thread ratio of the FMA peak above "
                 "shows how much of the second core this run actually got.")
    lines.append("")
    lines.append("| M x K x N | fnn | OpenBLAS | oneDNN | fnn % 2-thread peak | fnn / OpenBLAS | fnn / oneDNN |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|")
    for s in shapes:
        g = {lib: rows.get((lib, s, 2), {}).get("gflops") for lib in LIBS}
        pct = None if g["fnn"] is None or not peak[2] else 100 * g["fnn"] / peak[2]
        rb = None if None in (g["fnn"], g["openblas"]) else g["fnn"] / g["openblas"]
        rd = None if None in (g["fnn"], g["onednn"]) else g["fnn"] / g["onednn"]
        lines.append(f"| {s[0]}x{s[1]}x{s[2]} | {fmt(g['fnn'])} | {fmt(g['openblas'])} | {fmt(g['onednn'])} | "
                     f"{fmt(pct)} | {fmt(rb, '{:.2f}')} | {fmt(rd, '{:.2f}')} |")
    lines.append("")
    lines.append("## Scaling (2 threads / 1 thread, wall time)")
    lines.append("")
    lines.append("| M x K x N | fnn | OpenBLAS | oneDNN |")
    lines.append("|---|---:|---:|---:|")
    for s in shapes:
        cells = []
        for lib in LIBS:
            a, b = rows.get((lib, s, 1)), rows.get((lib, s, 2))
            cells.append(fmt(None if not a or not b else b["gflops"] / a["gflops"], "{:.2f}"))
        lines.append(f"| {s[0]}x{s[1]}x{s[2]} | " + " | ".join(cells) + " |")
    lines.append("")
    (args.results_dir / "kernels.md").write_text("\n".join(lines))

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5), sharey=True)
    width = 0.27
    for ax, t in zip(axes, (1, 2)):
        xs = range(len(shapes))
        key = "gflops_cpu" if t == 1 else "gflops"  # 1 thread: CPU-time rate, robust to other jobs
        for i, lib in enumerate(LIBS):
            vals = [rows.get((lib, s, t), {}).get(key) or 0 for s in shapes]
            ax.bar([x + (i - 1) * width for x in xs], vals, width, label=lib)
        line = peak_cpu if t == 1 else peak[t]
        if line:
            ax.axhline(line, color="k", linestyle="--", linewidth=1, label="measured peak")
        ax.set_xticks(list(xs))
        ax.set_xticklabels([f"{s[0]}x{s[1]}x{s[2]}" for s in shapes], rotation=30, ha="right")
        ax.set_title("1 thread (CPU time)" if t == 1 else "2 threads (wall time)")
        ax.set_ylabel("GFLOP/s")
        ax.legend(fontsize=8)
    fig.suptitle("fp32 GEMM Y = X W^T (M x K x N)")
    fig.tight_layout()
    fig.savefig(args.results_dir / "kernels.png", dpi=110)


if __name__ == "__main__":
    main()
