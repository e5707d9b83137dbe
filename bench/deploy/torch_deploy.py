#!/usr/bin/python3
"""PyTorch twin of deploy_bench.cpp: the main job's nn.Sequential (Linear, BatchNorm1d, GELU) x2, Linear, in
eval mode under torch.inference_mode(), batch 1, one thread. Timing as Google Benchmark's: each repetition runs
for at least min_time seconds and reports the mean per call; the median over repetitions is printed (ns).

Usage: /usr/bin/python3 torch_deploy.py [--reps 5] [--min-time 0.2]
"""
import argparse
import os
import statistics
import time

os.environ["OPENBLAS_NUM_THREADS"] = "1"
import torch  # noqa: E402  (after the environment is set)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--min-time", type=float, default=0.2)
    a = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.BatchNorm1d(256), torch.nn.GELU(),
                            torch.nn.Linear(256, 256), torch.nn.BatchNorm1d(256), torch.nn.GELU(),
                            torch.nn.Linear(256, 10)).eval()
    x = torch.full((1, 784), 0.25)
    times = []
    with torch.inference_mode():
        for _ in range(100):
            m(x)
        for _ in range(a.reps):
            n, t0 = 0, time.perf_counter()
            while True:
                m(x)
                n += 1
                t = time.perf_counter() - t0
                if t >= a.min_time:
                    break
            times.append(t / n * 1e9)
    print(f"torch_eval_batch1_median {statistics.median(times):.0f} ns ({a.reps} reps, torch {torch.__version__})")


if __name__ == "__main__":
    main()
