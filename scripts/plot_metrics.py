#!/usr/bin/python3
"""Plots a metrics.csv written by fnn-train (one row per epoch) into a PNG next to it.

    /usr/bin/python3 scripts/plot_metrics.py runs/fashion-mnist/metrics.csv [-o out.png]

Left: train and validation (or, for a run without --val, test) loss; middle: the accuracies; right: learning rate
at the end of each epoch.
"""
import argparse
import csv
import pathlib
import sys

import matplotlib

matplotlib.use("Agg")  # no display needed
import matplotlib.pyplot as plt  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("csv", type=pathlib.Path, help="metrics.csv written by fnn-train")
    ap.add_argument("-o", "--output", type=pathlib.Path, help="PNG to write (default: metrics.png next to the CSV)")
    args = ap.parse_args()
    try:
        with open(args.csv, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        sys.exit(f"plot_metrics: {e}")
    if not rows:
        sys.exit(f"plot_metrics: {args.csv} has no epochs yet")
    col = lambda k: [float(r[k]) for r in rows]  # noqa: E731
    epoch = col("epoch")
    # A run with --val scores every epoch on its validation split (the test set only once, at the end).
    held, name = ("val", "validation") if "val_loss" in rows[0] else ("test", "test")
    fig, ax = plt.subplots(1, 3, figsize=(14, 4))
    ax[0].plot(epoch, col("train_loss"), "o-", label="train")
    ax[0].plot(epoch, col(f"{held}_loss"), "o-", label=name)
    ax[0].set(title="loss (cross-entropy)", xlabel="epoch")
    ax[1].plot(epoch, col("train_accuracy"), "o-", label="train")
    ax[1].plot(epoch, col(f"{held}_accuracy"), "o-", label=name)
    ax[1].set(title="accuracy", xlabel="epoch")
    ax[2].plot(epoch, col("lr"), "o-")
    ax[2].set(title="learning rate (end of epoch)", xlabel="epoch")
    for a in ax[:2]:
        a.legend()
    for a in ax:
        a.grid(alpha=0.3)
    best = max(col(f"{held}_accuracy"))
    fig.suptitle(f"fnn-train: {args.csv}  (best {name} accuracy {best:.4f})")
    fig.tight_layout()
    out = args.output or args.csv.with_name("metrics.png")
    fig.savefig(out, dpi=100)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
