#!/usr/bin/env bash
# dead_rank.sh <mpiexec> <program>: rank 1 of 2 kills itself at step 3; the job must end (non-zero) within
# 60 s, and what it prints must name the rank that died.
set -u
mpiexec=$1 program=$2
start=$(date +%s)
out=$(timeout 60 "$mpiexec" -np 2 "$program" 2>&1)
status=$?
elapsed=$(($(date +%s) - start))
printf '%s\n' "$out"
echo "dead_rank: job ended with status $status after ${elapsed} s"
if [ "$status" -eq 124 ]; then echo "FAIL: the job hung (killed by the 60 s timeout)"; exit 1; fi
if [ "$status" -eq 0 ]; then echo "FAIL: the job reported success although rank 1 died"; exit 1; fi
if ! grep -q 'rank 1: dying at step 3' <<<"$out"; then echo "FAIL: rank 1 never reached its death"; exit 1; fi
if ! grep -Eiq 'rank 1 .*(exited on signal 9|killed)|process rank 1' <<<"$out"; then
  echo "FAIL: no message names rank 1 as the process that died"; exit 1
fi
echo "PASS"
