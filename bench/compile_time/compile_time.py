#!/usr/bin/env python3
"""Compile-time benchmark: how long g++ takes to compile fnn training programs.

Generates (1) the README's 784-256-256-10 training program (dense+batch_norm+gelu blocks, AdamW,
train_step + infer) and (2) networks of N hidden blocks, compiles each with g++ -O2 (median of
--repeat runs, wall time and peak memory of the compiler) and writes a markdown table.

    /usr/bin/python3 bench/compile_time/compile_time.py [--out bench/results/compile_time.md]
"""
import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PROGRAM = """#include <cstdio>
#include <vector>
#include "fnn/fnn.hpp"
#include "fnn/optim/adam.hpp"
using net_t = fnn::sequential<fnn::input<784>, {layers}, fnn::dense<10>>;
int main() {{
  net_t net{{fnn::seed{{42}}}};
  fnn::optim::adamw opt{{{{.lr = 1e-3f, .weight_decay = 1e-2f}}}};
  fnn::matrix<float> x(128, 784);
  std::vector<std::int32_t> y(128, 3);
  float loss = net.train_step(x.view(), y, fnn::loss::softmax_cross_entropy{{}}, opt);
  auto logits = net.infer(x.view());
  std::printf("%f %f\\n", double(loss), double(logits(0, 0)));
}}
"""


def source(blocks, width=256):
    layers = ", ".join(f"fnn::dense<{width}>, fnn::batch_norm, fnn::gelu" for _ in range(blocks))
    return PROGRAM.format(layers=layers)


def compile_once(path, out, flags):
    cmd = ["g++", "-std=c++20", "-O2", *flags, f"-I{ROOT}/include", path, "-o", out]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"compile failed:\n{proc.stderr[-3000:]}")
    rss_kib = int(proc.stderr.strip().splitlines()[-1])
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, rss_kib / 1024.0, cpu


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results", "compile_time.md"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--blocks", default="1,2,4,8,16")
    ap.add_argument("--flags", default="-march=native")
    args = ap.parse_args()
    flags = args.flags.split()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for blocks in [int(b) for b in args.blocks.split(",")]:
            path = os.path.join(tmp, f"net{blocks}.cpp")
            with open(path, "w") as f:
                f.write(source(blocks))
            runs = [compile_once(path, os.path.join(tmp, f"net{blocks}"), flags) for _ in range(args.repeat)]
            wall = statistics.median(r[0] for r in runs)
            rss = max(r[1] for r in runs)
            cpu = statistics.median(r[2] for r in runs)
            label = "784-256-256-10 (README program)" if blocks == 2 else f"{blocks} hidden blocks"
            rows.append((label, blocks, 3 * blocks + 1, cpu, wall, rss))
            print(f"{label}: cpu {cpu:.2f} s, wall {wall:.2f} s, {rss:.0f} MiB", flush=True)
    load = os.getloadavg()[0]
    gxx = subprocess.run(["g++", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(f"# Compile time of fnn training programs\n\n{gxx}, flags `-std=c++20 -O2 {args.flags}`, "
                f"median of {args.repeat}, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, load average {load:.1f} at the end.\n"
                f"CPU time (user + sys of the compiler) is the figure to compare: wall time grows with the "
                f"machine's load.\n"
                f"Command: `/usr/bin/python3 bench/compile_time/compile_time.py`\n\n")
        f.write("| network | dense+bn+gelu blocks | layers | compiler CPU time (s) | wall time (s) | peak compiler memory (MiB) |\n")
        f.write("|---|---:|---:|---:|---:|---:|\n")
        for label, blocks, layers, cpu, wall, rss in rows:
            f.write(f"| {label} | {blocks} | {layers} | {cpu:.2f} | {wall:.2f} | {rss:.0f} |\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
