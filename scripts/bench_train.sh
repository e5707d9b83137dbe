#!/usr/bin/env bash
# The main job against its PyTorch twin: fnn-train (release build, 1 thread) and bench/train/torch_mlp.py
# (1 thread: torch.set_num_threads(1) and OPENBLAS_NUM_THREADS=1), same network, optimizer, schedule, batch and
# epochs, alternated for R rounds (default 2), each under /usr/bin/time. Writes bench/results/train_runs.md
# (one row per run, plus the medians) and keeps the logs as bench/results/train_{fnn,torch}_r<i>.log.
#   usage: scripts/bench_train.sh [rounds]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rounds=${1:-2}
out=$root/bench/results
mkdir -p "$out"
cd "$root"
cmake --preset release > /dev/null
cmake --build --preset release --target fnn-train
exe=$root/build/release/examples/fnn_train/fnn-train
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for ((i = 1; i <= rounds; ++i)); do
  echo "== round $i: fnn-train"
  /usr/bin/time -f "time %e %U %S" -o "$tmp/fnn_$i.time" "$exe" --threads 1 --out "$tmp/run_$i" > "$out/train_fnn_r$i.log"
  echo "== round $i: torch_mlp.py"
  /usr/bin/time -f "time %e %U %S" -o "$tmp/torch_$i.time" /usr/bin/python3 bench/train/torch_mlp.py --threads 1 \
    > "$out/train_torch_r$i.log"
done

cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
/usr/bin/python3 - "$out" "$tmp" "$rounds" "$load_before" "$(git rev-parse --short HEAD)" "$cpu" "$(nproc)" <<'EOF'
import re, statistics, sys, datetime, pathlib
out, tmp, rounds, load, commit = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
cpu, ncpu = sys.argv[6], sys.argv[7]
rows, walls = [], {"fnn": [], "torch": []}
for i in range(1, rounds + 1):
    for impl in ("fnn", "torch"):
        wall, user, sys_ = map(float, (tmp / f"{impl}_{i}.time").read_text().split()[1:4])
        log = (out / f"train_{impl}_r{i}.log").read_text()
        acc = re.findall(r"^test accuracy (\d\.\d+)", log, re.M)[-1]
        epochs = [float(t) for t in re.findall(r"^epoch +\d+/\d+ .* (\d+\.\d+) s$", log, re.M)]
        walls[impl].append(wall)
        rows.append(f"| {impl}, round {i} | {wall:.2f} s | {user + sys_:.2f} s | {epochs[0]:.2f} s | {min(epochs):.2f} s | "
                    f"{sum(epochs):.2f} s | {acc} |")
fm, tm = statistics.median(walls["fnn"]), statistics.median(walls["torch"])
text = f"""# fnn-train vs PyTorch, measured by scripts/bench_train.sh

Date {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC, fnn commit {commit}, CPU {cpu} ({ncpu} CPUs), load average before {load}.
Commands: `build/release/examples/fnn_train/fnn-train --threads 1` and
`/usr/bin/python3 bench/train/torch_mlp.py --threads 1` (torch.set_num_threads(1), OPENBLAS_NUM_THREADS=1),
alternated, {rounds} round(s), each under `/usr/bin/time`. Wall time includes loading the data and (fnn) writing
checkpoints after every epoch; epoch times include each epoch's test evaluation.

| run | wall time | user+sys CPU | first epoch | fastest epoch | sum of epochs | test accuracy |
| --- | ---: | ---: | ---: | ---: | ---: | ---: |
""" + "\n".join(rows) + f"""

Median wall time: fnn {fm:.2f} s, PyTorch {tm:.2f} s: fnn is {tm / fm:.2f}x faster.
"""
(out / "train_runs.md").write_text(text)
print(text)
EOF
