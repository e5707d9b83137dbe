#!/usr/bin/python3
"""Writes bench/results/optim.md from Google Benchmark JSON (fnn_bench_optim) and torch_adamw.py output."""
import json
import sys

BYTES = {"triad": 12, "fnn_adamw": 28, "adamw_plain_loop": 28, "fnn_sgd_momentum": 20, "fnn_rmsprop": 20}
LABEL = {"triad": "STREAM triad a = b + s*c", "fnn_adamw": "fnn AdamW", "adamw_plain_loop": "plain -O3 loop AdamW",
         "fnn_sgd_momentum": "fnn SGD momentum", "fnn_rmsprop": "fnn RMSProp", "torch_adamw": "torch AdamW foreach, 1 thread"}


def size_label(n):
    return f"{n >> 20}M" if n >= 1 << 20 else f"{n >> 10}K"


def main(bench_json, torch_txt, out_md, command):
    data = json.load(open(bench_json))
    med = {}
    for b in data["benchmarks"]:
        if b.get("aggregate_name") != "median":
            continue
        name, n = b["run_name"].split("/")[:2]
        med[(name, int(n))] = b["real_time"] * {"ms": 1e-3, "us": 1e-6, "ns": 1e-9, "s": 1.0}[b["time_unit"]]
    for line in open(torch_txt):
        parts = line.split()
        if len(parts) == 3:
            med[("torch_adamw", int(parts[1]))] = float(parts[2])
    sizes = sorted({n for _, n in med})
    ctx = data["context"]
    rows = []
    for n in sizes:
        triad_gbs = 12 * n / med[("triad", n)] / 1e9 if ("triad", n) in med else None
        for name in ["triad", "fnn_adamw", "adamw_plain_loop", "torch_adamw", "fnn_sgd_momentum", "fnn_rmsprop"]:
            if (name, n) not in med:
                continue
            t = med[(name, n)]
            bpp = BYTES.get(name, 28)
            gbs = bpp * n / t / 1e9
            pct = f"{100 * gbs / triad_gbs:.0f}%" if triad_gbs and name != "triad" else ""
            ratio = ""
            if name in ("fnn_adamw", "adamw_plain_loop") and ("torch_adamw", n) in med:
                ratio = f"{med[('torch_adamw', n)] / t:.1f}x"
            rows.append(f"| {size_label(n)} | {LABEL[name]} | {t * 1e3:.3f} | {n / t / 1e6:.0f} | {gbs:.1f} | {pct} | {ratio} |")
    with open(out_md, "w") as f:
        f.write("# Optimizer step benchmark\n\n")
        f.write(f"Command: `{command}`\n\n")
        f.write(f"Machine: {ctx.get('num_cpus')} CPUs at {ctx.get('mhz_per_cpu')} MHz (as reported), single thread, "
                f"load average at start {ctx.get('load_avg')}. Medians of the repetitions; wall time.\n\n")
        f.write("Bytes counted per parameter: AdamW 28 (read p g m v, write p m v), SGD momentum and RMSProp 20, "
                "triad 12 per element. '% triad' compares with the triad of the same size in the same run. "
                "'vs torch' = torch time / this time. The 2K rows are cache-resident: they show each kernel's "
                "arithmetic ceiling, not memory bandwidth.\n\n")
        f.write("| size | kernel | ms/step | Mparam/s | GB/s | % triad | vs torch |\n")
        f.write("| --- | --- | ---: | ---: | ---: | ---: | ---: |\n")
        f.write("\n".join(rows) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:5])
