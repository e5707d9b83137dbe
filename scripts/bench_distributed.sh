#!/usr/bin/env bash
# Samples/s of the data-parallel main job: fnn over MPI (1 process vs 2 processes, 1 thread each) and PyTorch
# DDP (gloo) on the same processes, alternated for R rounds (default 1), E epochs each (default 1).
# Writes bench/results/distributed.md with the medians, the ratios and the CPU model.
#   usage: scripts/bench_distributed.sh [rounds] [epochs]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
rounds=${1:-1}
epochs=${2:-1}
cd "$root"
cmake --preset release > /dev/null
cmake --build --preset release --target fnn_bench_dp_train fnn-train
exe=$root/build/release/bench/distributed/fnn_bench_dp_train
train=$root/build/release/examples/fnn_train/fnn-train
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
run() {  # run <label> <command...>: appends "<label>|<samples/s>|<accuracy>" to $log
  local label=$1
  shift
  local out
  out=$("$@" 2>&1 | tail -1)
  echo "  $label: $out"
  sed -n 's/.*: \([0-9]*\) samples\/s, test accuracy \([0-9.]*\).*/\1 \2/p' <<<"$out" | {
    read -r sps acc
    echo "$label|$sps|$acc" >> "$log"
  }
}
# fnn-train itself (checkpoints and per-epoch test scoring included in the run, not in the rate): the
# samples_per_second of metrics.csv (training loop only) of its last epoch, and the final test accuracy.
tool() {  # tool <out dir> <command...>
  local dir=$1
  shift
  rm -rf "$dir"
  "$@" --epochs "$epochs" --out "$dir" > /dev/null 2>&1 || { echo "failed: $*"; return 1; }
  tail -n 1 "$dir/metrics.csv" | awk -F, '{printf "fnn-train: %d samples/s, test accuracy %s\n", $9, $7}'
}
scratch=$(mktemp -d)
trap 'rm -f "$log"; rm -rf "$scratch"' EXIT
for ((i = 1; i <= rounds; ++i)); do
  echo "== round $i"
  run "fnn 1 process, batch 128" "$exe" --epochs "$epochs" --batch 128
  run "fnn 2 processes x 64 (global 128)" mpirun --oversubscribe -np 2 "$exe" --epochs "$epochs" --batch 64
  run "fnn 2 processes x 64, SyncBatchNorm" mpirun --oversubscribe -np 2 "$exe" --epochs "$epochs" --batch 64 --sync-bn
  run "fnn 2 processes x 128 (global 256)" mpirun --oversubscribe -np 2 "$exe" --epochs "$epochs" --batch 128
  run "fnn-train 1 process, batch 128" tool "$scratch/one" "$train" --batch 128
  run "fnn-train --distributed 2 x 128 (global 256)" tool "$scratch/two" mpirun --oversubscribe -np 2 "$train" --distributed --batch 128
  run "torch DDP 1 process, batch 128" /usr/bin/python3 bench/distributed/torch_ddp.py --procs 1 --batch 128 --epochs "$epochs"
  run "torch DDP 2 processes x 64 (global 128)" /usr/bin/python3 bench/distributed/torch_ddp.py --procs 2 --batch 64 --epochs "$epochs"
  run "torch DDP 2 processes x 128 (global 256)" /usr/bin/python3 bench/distributed/torch_ddp.py --procs 2 --batch 128 --epochs "$epochs"
done
cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
/usr/bin/python3 - "$log" "$rounds" "$epochs" "$load_before" "$(git rev-parse --short HEAD)" "$cpu" "$(nproc --all)" \
  > bench/results/distributed.md <<'PY'
import collections, datetime, statistics, sys
log, rounds, epochs, load, commit, cpu, ncpu = sys.argv[1:8]
runs = collections.OrderedDict()
for line in open(log):
    label, sps, acc = line.strip().split("|")
    runs.setdefault(label, []).append((float(sps), float(acc)))
med = {k: statistics.median(s for s, _ in v) for k, v in runs.items()}
print(f"""# Data-parallel main job, measured by scripts/bench_distributed.sh

Date {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC, fnn commit {commit}, CPU {cpu} ({ncpu} CPUs), load average
before {load}; {rounds} round(s) of {epochs} epoch(s), medians. One thread per process. Samples/s: training
samples of the global batch per second of the training loop (data loading and test evaluation excluded).

| run | samples/s | vs 1 process (same implementation) | test accuracy |
| --- | ---: | ---: | ---: |""")
for k, v in runs.items():
    base = (med.get("fnn-train 1 process, batch 128", 0) if k.startswith("fnn-train")
            else med["fnn 1 process, batch 128"] if k.startswith("fnn") else med.get("torch DDP 1 process, batch 128", 0))
    ratio = f"{med[k] / base:.2f}x" if base else "-"
    print(f"| {k} | {med[k]:.0f} | {ratio} | {statistics.median(a for _, a in v):.4f} |")
f2 = med.get("fnn 2 processes x 128 (global 256)"); t2 = med.get("torch DDP 2 processes x 128 (global 256)")
if f2 and t2:
    print(f"\nfnn vs PyTorch DDP at 2 processes x 128: {f2 / t2:.2f}x the samples/s.")
PY
cat bench/results/distributed.md
