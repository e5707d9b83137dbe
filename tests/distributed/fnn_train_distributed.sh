#!/usr/bin/env bash
# fnn_train_distributed.sh <mpiexec> <fnn-train>: `mpirun -np 2 fnn-train --distributed` on 4096 Fashion-MNIST
# training images (the test set scored every epoch):
#   1. 2 ranks x 64 with --sync-batch-norm train the network 1 process x 128 trains (same samples per step):
#      final test loss within 1e-3 relative, accuracy within 0.005;
#   2. without SyncBatchNorm (per-rank statistics) the accuracy still reaches the single process's within 0.03
#      (the difference is printed);
#   3. --stop-after 1 and --resume give the bits of the uninterrupted run (model.safetensors byte-identical);
#   4. resuming with another rank count is refused with a message naming both;
#   5. 3 ranks repeat bit for bit and, with SyncBatchNorm, match 1 process x 96;
#   6. a rank killed mid-epoch, and a rank that fails (unwritable --out), end the job non-zero within 60 s with a
#      message naming the rank.
set -u
mpiexec=$1 train=$2
data=/usr/share/datasets/fashion-mnist
if [ ! -e "$data/train-images-idx3-ubyte.gz" ] && [ ! -e "$data/train-images-idx3-ubyte" ]; then
  echo "skipped: Fashion-MNIST not in $data (scripts/setup.sh installs dataset-fashion-mnist)"; exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
# The last row of metrics.csv: test_loss test_accuracy.
last() { tail -n 1 "$1/metrics.csv" | awk -F, '{print $6, $7}'; }
close() { awk -v a="$1" -v b="$2" -v tol="$3" -v rel="$4" 'BEGIN {
  d = a - b; if (d < 0) d = -d; lim = rel ? tol * (a < 0 ? -a : a) : tol; exit !(d <= lim) }'; }

common=(--subset 4096 --epochs 2 --data "$data")
"$train" "${common[@]}" --batch 128 --out "$work/one" >/dev/null 2>&1 || fail "the one-process run failed"
"$mpiexec" -np 2 "$train" --distributed --sync-batch-norm "${common[@]}" --batch 64 --out "$work/sync" \
  >"$work/sync.log" 2>&1 || { cat "$work/sync.log"; fail "the 2-rank SyncBatchNorm run failed"; }
"$mpiexec" -np 2 "$train" --distributed "${common[@]}" --batch 64 --out "$work/local" >/dev/null 2>&1 ||
  fail "the 2-rank run without SyncBatchNorm failed"
read -r one_loss one_acc < <(last "$work/one")
read -r sync_loss sync_acc < <(last "$work/sync")
read -r local_loss local_acc < <(last "$work/local")
echo "1 x 128:               test loss $one_loss accuracy $one_acc"
echo "2 x 64 SyncBatchNorm:  test loss $sync_loss accuracy $sync_acc"
echo "2 x 64 per-rank stats: test loss $local_loss accuracy $local_acc"
close "$sync_loss" "$one_loss" 1e-3 1 || fail "SyncBatchNorm: test loss $sync_loss vs one process $one_loss"
close "$sync_acc" "$one_acc" 0.005 0 || fail "SyncBatchNorm: accuracy $sync_acc vs one process $one_acc"
close "$local_acc" "$one_acc" 0.03 0 || fail "per-rank statistics: accuracy $local_acc vs one process $one_acc"

# Penalty terms are added once, after the reduction: with --penalty-l2 the two runs still agree.
"$train" "${common[@]}" --batch 128 --penalty-l2 1e-3 --out "$work/one_l2" >/dev/null 2>&1 || fail "1-process L2 run failed"
"$mpiexec" -np 2 "$train" --distributed --sync-batch-norm "${common[@]}" --batch 64 --penalty-l2 1e-3 \
  --out "$work/sync_l2" >/dev/null 2>&1 || fail "the 2-rank L2 run failed"
read -r one_l2_loss _ < <(last "$work/one_l2")
read -r sync_l2_loss _ < <(last "$work/sync_l2")
train_loss() { tail -n 1 "$1/metrics.csv" | cut -d, -f4; }
echo "--penalty-l2 1e-3: train loss 1 x 128 $(train_loss "$work/one_l2"), 2 x 64 $(train_loss "$work/sync_l2")"
close "$(train_loss "$work/sync_l2")" "$(train_loss "$work/one_l2")" 1e-3 1 || fail "--penalty-l2: the train losses differ"
close "$sync_l2_loss" "$one_l2_loss" 1e-3 1 || fail "--penalty-l2: test loss $sync_l2_loss vs $one_l2_loss"

"$mpiexec" -np 2 "$train" --distributed --sync-batch-norm "${common[@]}" --batch 64 --out "$work/resumed" \
  --stop-after 1 >/dev/null 2>&1 || fail "the interrupted run failed"
"$mpiexec" -np 2 "$train" --distributed --out "$work/resumed" --resume --data "$data" >"$work/resume.log" 2>&1 ||
  { cat "$work/resume.log"; fail "the resumed run failed"; }
grep -q "resuming .* after epoch 1" "$work/resume.log" || fail "the resumed run did not resume after epoch 1"
cmp "$work/sync/model.safetensors" "$work/resumed/model.safetensors" ||
  fail "resumed and uninterrupted distributed runs end with different models"
echo "resume after epoch 1: model.safetensors byte-identical to the uninterrupted run"

out=$("$mpiexec" -np 1 "$train" --distributed --out "$work/resumed" --resume --data "$data" 2>&1) &&
  fail "resuming a 2-rank state on 1 rank was accepted"
grep -q "was made by 2 ranks" <<<"$out" || { echo "$out"; fail "the rank-count refusal does not name 2 ranks"; }
echo "resume on 1 rank of a 2-rank state: refused"

# More than two ranks (oversubscribed): the same run twice gives the same bits (a fixed rank count is
# deterministic), and 3 x 32 with SyncBatchNorm trains what 1 x 96 trains (4032 = 42 global batches of 96).
n3=(--subset 4032 --epochs 2 --data "$data")
"$train" "${n3[@]}" --batch 96 --out "$work/one96" >/dev/null 2>&1 || fail "the 1 x 96 run failed"
for run in a b; do
  "$mpiexec" -np 3 "$train" --distributed --sync-batch-norm "${n3[@]}" --batch 32 --out "$work/three$run" \
    >"$work/three.log" 2>&1 || { cat "$work/three.log"; fail "the 3-rank run failed"; }
done
cmp "$work/threea/model.safetensors" "$work/threeb/model.safetensors" || fail "two 3-rank runs differ"
read -r one96_loss one96_acc < <(last "$work/one96")
read -r three_loss three_acc < <(last "$work/threea")
echo "1 x 96: test loss $one96_loss accuracy $one96_acc; 3 x 32 SyncBatchNorm: $three_loss $three_acc (twice, same bits)"
close "$three_loss" "$one96_loss" 1e-3 1 || fail "3 ranks: test loss $three_loss vs one process $one96_loss"
close "$three_acc" "$one96_acc" 0.005 0 || fail "3 ranks: accuracy $three_acc vs one process $one96_acc"

start=$(date +%s)
out=$(timeout 60 "$mpiexec" -np 2 sh -c 'if [ "$OMPI_COMM_WORLD_RANK" = 1 ]; then export FNN_TRAIN_CRASH_AFTER=step:5; fi
  exec "$0" "$@"' "$train" --distributed "${common[@]}" --batch 64 --out "$work/killed" 2>&1)
status=$?
echo "rank 1 killed at step 5: job status $status after $(($(date +%s) - start)) s"
[ "$status" -ne 124 ] || fail "the job hung after rank 1 died"
[ "$status" -ne 0 ] || fail "the job reported success although rank 1 died"
grep -Eiq 'rank 1 .*(exited on signal 9|killed)|process rank 1' <<<"$out" || { echo "$out"; fail "no message names rank 1"; }

start=$(date +%s)
out=$(timeout 60 "$mpiexec" -np 2 "$train" --distributed "${common[@]}" --out /proc/fnn-not-writable 2>&1)
status=$?
echo "rank 0 cannot create --out: job status $status after $(($(date +%s) - start)) s"
[ "$status" -ne 124 ] && [ "$status" -ne 0 ] || fail "the job did not end with an error (status $status)"
grep -q "fnn-train (rank 0): /proc/fnn-not-writable: cannot create the output directory" <<<"$out" ||
  { echo "$out"; fail "the message does not name rank 0 and the directory"; }
echo "PASS"
