#!/usr/bin/python3
"""PyTorch twin of bench/network/freeze_bench.cpp: the 784-256-256-10 MLP (Linear, BatchNorm1d, GELU twice, Linear),
batch 128, train mode, one thread, with nothing frozen, the first Linear frozen (requires_grad_(False)), or the
first Linear + BatchNorm1d + GELU frozen (requires_grad_(False) and the BatchNorm1d in eval()).

Timed: backward alone, y.backward(dy) after model.zero_grad(set_to_none=True) and a forward outside the timed
region, median over --reps repetitions of the mean over >= --min-time seconds; microseconds.

Usage: /usr/bin/python3 bench/network/torch_freeze.py [--reps 5] [--min-time 0.5]
"""
import argparse
import os
import statistics
import time

os.environ["OPENBLAS_NUM_THREADS"] = "1"  # Debian's OpenBLAS pool ignores set_num_threads: pin it before import
import torch  # noqa: E402


def model_with(frozen):
    torch.manual_seed(42)
    m = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.BatchNorm1d(256), torch.nn.GELU(),
                            torch.nn.Linear(256, 256), torch.nn.BatchNorm1d(256), torch.nn.GELU(),
                            torch.nn.Linear(256, 10))
    m.train()
    if frozen >= 1:
        m[0].requires_grad_(False)
    if frozen >= 2:
        m[1].requires_grad_(False)
        m[1].eval()
    return m


def time_backward(frozen, reps, min_time):
    m = model_with(frozen)
    x = torch.randn(128, 784)
    dy = torch.randn(128, 10)
    results = []
    for _ in range(reps):
        total, count = 0.0, 0
        while total < min_time:
            m.zero_grad(set_to_none=True)
            y = m(x)
            t0 = time.perf_counter()
            y.backward(dy)
            total += time.perf_counter() - t0
            count += 1
        results.append(total / count * 1e6)
    assert frozen == 0 or m[0].weight.grad is None
    return statistics.median(results)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--min-time", type=float, default=0.5)
    a = p.parse_args()
    torch.set_num_threads(1)
    base = None
    for frozen, name in ((0, "none"), (1, "dense0"), (2, "stage0")):
        us = time_backward(frozen, a.reps, a.min_time)
        base = base or us
        print(f"torch backward {name}: {us:.0f} us ({us / base:.2f}x)")


if __name__ == "__main__":
    main()
