#!/usr/bin/python3
"""The data-parallel main job in PyTorch DDP (gloo backend, CPU), twin of fnn_bench_dp_train.

    /usr/bin/python3 bench/distributed/torch_ddp.py --procs 2 --batch 64 [--epochs 1] [--data DIR]

784-256-256-10 (Linear + BatchNorm1d + GELU blocks), AdamW (lr 1e-3, weight decay 1e-2), cosine schedule over
all steps, pixels / 255. --batch is per process; every epoch one seeded permutation, process r takes rows
[rB, (r+1)B) of each global batch (full global batches only), as fnn_bench_dp_train does. One thread per
process (torch.set_num_threads(1), OPENBLAS_NUM_THREADS=1). Batch norm is per process: torch 1.13's
SyncBatchNorm runs on GPUs only. Prints the training samples per second (global; data loading and test
evaluation excluded) and process 0's test accuracy.
"""
import argparse
import os
import pathlib
import sys
import time

os.environ["OPENBLAS_NUM_THREADS"] = "1"
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402
from torch import nn  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "train"))
from torch_mlp import load  # noqa: E402  (the same IDX reader as the single-process twin)


def worker(rank, args):
    torch.set_num_threads(1)
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", str(args.port))
    dist.init_process_group("gloo", rank=rank, world_size=args.procs)
    torch.manual_seed(42)
    xtr, ytr = load(args.data, "train")
    xte, yte = load(args.data, "t10k")
    model = nn.Sequential(
        nn.Linear(784, 256), nn.BatchNorm1d(256), nn.GELU(),
        nn.Linear(256, 256), nn.BatchNorm1d(256), nn.GELU(),
        nn.Linear(256, 10))
    ddp = nn.parallel.DistributedDataParallel(model)
    glob = args.batch * args.procs
    steps = xtr.shape[0] // glob
    opt = torch.optim.AdamW(ddp.parameters(), lr=1e-3, weight_decay=1e-2)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps * args.epochs)
    loss_fn = nn.CrossEntropyLoss()
    seconds = 0.0
    for epoch in range(args.epochs):
        perm = torch.randperm(xtr.shape[0], generator=torch.Generator().manual_seed(42 + epoch))
        dist.barrier()
        t0 = time.perf_counter()
        for s in range(steps):
            idx = perm[s * glob + rank * args.batch : s * glob + (rank + 1) * args.batch]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(ddp(xtr[idx]), ytr[idx])
            loss.backward()
            opt.step()
            sched.step()
        dist.barrier()
        seconds += time.perf_counter() - t0
    if rank == 0:
        model.eval()
        with torch.no_grad():
            acc = (model(xte).argmax(1) == yte).float().mean().item()
        print(f"torch {torch.__version__} DDP gloo, procs {args.procs}, batch {args.batch} per process ({glob} global): "
              f"{steps * glob * args.epochs / seconds:.0f} samples/s, test accuracy {acc:.4f}", flush=True)
    dist.destroy_process_group()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--port", type=int, default=29517)
    ap.add_argument("--data", type=pathlib.Path, default=pathlib.Path("/usr/share/datasets/fashion-mnist"))
    args = ap.parse_args()
    mp.spawn(worker, args=(args,), nprocs=args.procs, join=True)


if __name__ == "__main__":
    main()
