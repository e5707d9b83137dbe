#!/usr/bin/python3
"""PyTorch twin of eval_bench.cpp: the nn.Sequential (Linear, BatchNorm1d, GELU) x2, Linear of widths 784-H-H-10
for H = 1024 ("big") and 256 ("main"), in eval mode under torch.inference_mode(), one thread (torch.set_num_threads(1)
and OPENBLAS_NUM_THREADS=1: Debian's torch runs its products in OpenBLAS, whose pool ignores set_num_threads).
Timing as Google Benchmark's: each repetition runs for at least min_time seconds (wall) and reports the mean wall
and CPU (process) time per call; the medians over repetitions are printed, one line per case:
"<name> <median wall ns> <median cpu ns>" (on a loaded machine the CPU time is the comparable figure).

Usage: /usr/bin/python3 torch_eval.py [--reps 5] [--min-time 0.2] [--batches 1,4]
"""
import argparse
import os
import statistics
import time

os.environ["OPENBLAS_NUM_THREADS"] = "1"
os.environ.setdefault("OMP_WAIT_POLICY", "passive")
import torch  # noqa: E402  (after the environment is set)


def model(h):
    m = torch.nn.Sequential(torch.nn.Linear(784, h), torch.nn.BatchNorm1d(h), torch.nn.GELU(),
                            torch.nn.Linear(h, h), torch.nn.BatchNorm1d(h), torch.nn.GELU(),
                            torch.nn.Linear(h, 10))
    # Trained-looking running statistics, as the fnn side has (a few train-mode forwards).
    m.train()
    with torch.no_grad():
        for _ in range(3):
            m(torch.randn(64, 784))
    return m.eval()


def median_ns(f, reps, min_time):
    for _ in range(100):
        f()
    wall, cpu = [], []
    for _ in range(reps):
        n, t0, c0 = 0, time.perf_counter(), time.process_time()
        while True:
            f()
            n += 1
            t = time.perf_counter() - t0
            if t >= min_time:
                break
        wall.append(t / n * 1e9)
        cpu.append((time.process_time() - c0) / n * 1e9)
    return f"{statistics.median(wall):.0f} {statistics.median(cpu):.0f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--min-time", type=float, default=0.2)
    ap.add_argument("--batches", default="1,4")
    a = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    for name, h in (("big", 1024), ("main", 256)):
        m = model(h)
        with torch.inference_mode():
            for b in (int(s) for s in a.batches.split(",")):
                x = torch.randn(b, 784)
                print(f"torch_{name}/{b} {median_ns(lambda: m(x), a.reps, a.min_time)}", flush=True)
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} thread(s)")


if __name__ == "__main__":
    main()
