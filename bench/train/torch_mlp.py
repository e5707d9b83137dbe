#!/usr/bin/python3
"""The fnn-train job in PyTorch (1.13, Debian's python3-torch), for time and accuracy comparison.

    /usr/bin/python3 bench/train/torch_mlp.py [--threads 1] [--epochs 10] [--data DIR]

Same network (784-256-256-10, Linear + BatchNorm1d + GELU blocks), AdamW (lr 1e-3, weight decay 1e-2 on
all parameters), cosine schedule over all steps (stepped every batch), batch 128, 10 epochs, pixels / 255,
a fresh shuffle every epoch (a last batch of one sample is dropped, as fnn-train does), test accuracy after
every epoch. Differences from fnn-train: torch's default initialization (kaiming_uniform(a=sqrt(5)) and
uniform biases; fnn uses He-normal for layers followed by GELU, zero biases) and no checkpoint writing.
Single thread by default (torch.set_num_threads, and OPENBLAS_NUM_THREADS: see below).
"""
import argparse
import os
import gzip
import pathlib
import time

# Debian's torch 1.13 runs its matrix products in OpenBLAS's pthreads build, whose thread pool ignores
# torch.set_num_threads: at "1 thread" the B=256 1024->1024 block measured 10.6 ms wall for 19.1 ms of CPU.
# Pin it to --threads before torch loads the library.
_pre = argparse.ArgumentParser(add_help=False)
_pre.add_argument("--threads", type=int, default=1)
os.environ["OPENBLAS_NUM_THREADS"] = str(max(1, _pre.parse_known_args()[0].threads))
import numpy as np  # noqa: E402  (numpy loads OpenBLAS too)
import torch  # noqa: E402  (after the environment is set)
from torch import nn


def read_idx(path):
    with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(d, prefix):
    def find(stem):
        for name in (stem + ".gz", stem):
            if (d / name).exists():
                return d / name
        raise SystemExit(f"torch_mlp: {d / stem}[.gz] not found (apt-get install dataset-fashion-mnist)")

    x = read_idx(find(f"{prefix}-images-idx3-ubyte")).reshape(-1, 784).astype(np.float32) / 255.0
    y = read_idx(find(f"{prefix}-labels-idx1-ubyte")).astype(np.int64)
    return torch.from_numpy(x), torch.from_numpy(y)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--data", type=pathlib.Path, default=pathlib.Path("/usr/share/datasets/fashion-mnist"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    t0 = time.perf_counter()
    xtr, ytr = load(args.data, "train")
    xte, yte = load(args.data, "t10k")
    model = nn.Sequential(
        nn.Linear(784, 256), nn.BatchNorm1d(256), nn.GELU(),
        nn.Linear(256, 256), nn.BatchNorm1d(256), nn.GELU(),
        nn.Linear(256, 10))
    n = xtr.shape[0]
    steps = n // args.batch + (1 if n % args.batch >= 2 else 0)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-2)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps * args.epochs)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(args.seed)

    def test_accuracy():
        model.eval()
        with torch.no_grad():
            pred = torch.cat([model(xte[i : i + 1000]).argmax(1) for i in range(0, xte.shape[0], 1000)])
        model.train()
        return (pred == yte).float().mean().item()

    t_train = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        te = time.perf_counter()
        perm = torch.randperm(n, generator=gen)
        total, correct = 0.0, 0
        for s in range(steps):
            idx = perm[s * args.batch : (s + 1) * args.batch]
            x, y = xtr[idx], ytr[idx]
            opt.zero_grad(set_to_none=True)
            out = model(x)
            loss = loss_fn(out, y)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
            correct += (out.argmax(1) == y).sum().item()
        acc = test_accuracy()
        print(f"epoch {epoch:2d}/{args.epochs}  train loss {total / n:.4f}  train acc {correct / n:.4f}  "
              f"test acc {acc:.4f}  {time.perf_counter() - te:.2f} s", flush=True)
    t_end = time.perf_counter()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    print(f"test accuracy {test_accuracy():.4f}")
    print(f"training time {t_end - t_train:.2f} s (10 epochs incl. per-epoch test evaluation); "
          f"total wall time {t_end - t0:.2f} s (incl. data loading)")


if __name__ == "__main__":
    main()
