#!/usr/bin/python3
"""PyTorch twin of bench/network/block_bench.cpp: nn.Sequential(Linear, BatchNorm1d, GELU()) in train mode.

Passes (same as fnn's):
  fwd      y = model(x)
  fwd_bwd  model.zero_grad(set_to_none=True); x.grad = None; y = model(x); y.backward(dy)
           (input gradient requested: x.requires_grad = True; zero_grad included, as in fnn's loop)
Timing follows Google Benchmark's scheme: each repetition runs the pass for at least min_time seconds and
reports the mean per iteration (wall time, and process CPU time); the median over the repetitions is
reported. Before timing, the output and the input / weight gradients are checked against a float64
computation of the same block from the same weights (max |a - b| / max |b| <= 1e-3).

Usage: /usr/bin/python3 torch_block.py --threads N [--reps 5] [--min-time 0.2] > out.json
(Debian's torch lives in the system interpreter, not in the python3 first on PATH.)
"""
import argparse
import os
import json
import math
import statistics
import sys
import time

# Debian's torch 1.13 runs its matrix products in OpenBLAS's pthreads build, whose thread pool ignores
# torch.set_num_threads: at "1 thread" the B=256 1024->1024 block measured 10.6 ms wall for 19.1 ms of CPU.
# Pin it to --threads before torch loads the library.
_pre = argparse.ArgumentParser(add_help=False)
_pre.add_argument("--threads", type=int, default=1)
os.environ["OPENBLAS_NUM_THREADS"] = str(max(1, _pre.parse_known_args()[0].threads))
import torch  # noqa: E402  (after the environment is set)

SHAPES = [(256, 1024, 1024), (128, 784, 256)]  # (batch, in, out)
TOLERANCE = 1e-3


def make(batch, n_in, n_out):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(n_in, n_out), torch.nn.BatchNorm1d(n_out), torch.nn.GELU())
    model.train()
    x = torch.randn(batch, n_in, requires_grad=True)
    dy = torch.randn(batch, n_out)
    return model, x, dy


def rel_err(a, b):
    scale = b.abs().max().item()
    diff = (a.double() - b).abs().max().item()
    return diff / scale if scale > 0 else diff


def check(model, x, dy):
    """Float64 reference of linear -> batch norm (batch statistics, biased variance) -> exact GELU."""
    lin, bn = model[0], model[1]
    model.zero_grad(set_to_none=True)
    x.grad = None
    y = model(x)
    y.backward(dy)
    xd = x.detach().double().requires_grad_(True)
    w = lin.weight.detach().double().requires_grad_(True)
    z = xd @ w.t() + lin.bias.detach().double()
    mean = z.mean(0)
    var = z.var(0, unbiased=False)
    u = (z - mean) / torch.sqrt(var + bn.eps) * bn.weight.detach().double() + bn.bias.detach().double()
    ref = 0.5 * u * (1 + torch.erf(u / math.sqrt(2)))
    ref.backward(dy.double())
    errs = {"output": rel_err(y.detach(), ref.detach()), "input gradient": rel_err(x.grad, xd.grad),
            "weight gradient": rel_err(lin.weight.grad, w.grad)}
    bad = {k: v for k, v in errs.items() if not v <= TOLERANCE}
    if bad:
        raise SystemExit(f"torch_block: PyTorch block differs from the float64 reference: {bad}")
    return max(errs.values())


def run_pass(model, x, dy, backward):
    if backward:
        model.zero_grad(set_to_none=True)
        x.grad = None
        y = model(x)
        y.backward(dy)
    else:
        y = model(x)
    return y


def repetition(model, x, dy, backward, min_time):
    # Google Benchmark grows the iteration count until a run lasts min_time; here: run until it has.
    iters, wall0, cpu0 = 0, time.perf_counter(), time.process_time()
    while True:
        run_pass(model, x, dy, backward)
        iters += 1
        wall = time.perf_counter() - wall0
        if wall >= min_time:
            return wall / iters, (time.process_time() - cpu0) / iters, iters


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--min-time", type=float, default=0.2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    results = []
    for batch, n_in, n_out in SHAPES:
        model, x, dy = make(batch, n_in, n_out)
        err = check(model, x, dy)
        for backward in (False, True):
            for _ in range(3):  # warm-up: allocator, thread pool
                run_pass(model, x, dy, backward)
            reps = [repetition(model, x, dy, backward, args.min_time) for _ in range(args.reps)]
            results.append({
                "impl": "torch", "pass": "fwd_bwd" if backward else "fwd", "shape": f"{n_in}x{n_out}",
                "batch": batch, "threads": args.threads,
                "median_real_ms": statistics.median(r[0] for r in reps) * 1e3,
                "median_cpu_ms": statistics.median(r[1] for r in reps) * 1e3,
                "real_ms": [r[0] * 1e3 for r in reps], "iterations": [r[2] for r in reps],
                "max_rel_err_vs_float64": err,
            })
            print(f"torch {results[-1]['pass']} {n_in}x{n_out} B={batch} nt={args.threads}: "
                  f"{results[-1]['median_real_ms']:.3f} ms", file=sys.stderr, flush=True)
    json.dump({"torch_version": torch.__version__, "num_threads": torch.get_num_threads(),
               "openblas_num_threads": os.environ["OPENBLAS_NUM_THREADS"],
               "num_interop_threads": torch.get_num_interop_threads(), "config": torch.__config__.parallel_info(),
               "results": results}, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
