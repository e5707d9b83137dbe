#!/usr/bin/python3
"""One torch.optim.AdamW(foreach=True) step, single thread, at fnn's benchmark sizes.

Prints one line per size: "torch_adamw N median_seconds". Run with /usr/bin/python3 (Debian's torch).
"""
import statistics
import sys
import time

import torch


def time_step(n, reps):
    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.full((n,), 0.5))
    p.grad = torch.full((n,), 0.01)
    opt = torch.optim.AdamW([p], lr=1e-3, weight_decay=1e-2, foreach=True)
    opt.step()  # allocates the state outside the timing
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        opt.step()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    torch.set_num_threads(1)
    sizes = [int(a) for a in sys.argv[1:]] or [1 << 20, 16 << 20, 64 << 20]
    for n in sizes:
        reps = max(5, min(50, (64 << 20) * 5 // n))
        print(f"torch_adamw {n} {time_step(n, reps):.6e}", flush=True)


if __name__ == "__main__":
    main()
