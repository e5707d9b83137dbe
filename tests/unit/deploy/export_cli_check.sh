#!/bin/sh
# export_cli_check.sh <fnn-export> <checkpoint> <dir>: the tool rejects a layer list that does not match the
# checkpoint with exit status 1, a message naming the tensor with its expected and found shapes, and no header;
# and --int8 without calibration data the same way.
exe="$1"; checkpoint="$2"; out="$3/cli_check.hpp"
rm -f "$out"
"$exe" "$checkpoint" -o "$out" --layers "dense 784 255; gelu 255 255; dense 255 10" > "$3/cli_check.log" 2>&1
status=$?
cat "$3/cli_check.log"
[ "$status" -eq 1 ] || { echo "export_cli_check FAIL: exit status $status, expected 1"; exit 1; }
grep -q 'differs: expected 0.weight F32 \[255, 784\], found 0.weight F32 \[256, 784\]' "$3/cli_check.log" ||
  { echo "export_cli_check FAIL: the message does not name 0.weight with both shapes"; exit 1; }
grep -q 'unexpected: 1.running_mean F32 \[256\]' "$3/cli_check.log" ||
  { echo "export_cli_check FAIL: the message does not name the unused batch norm tensors"; exit 1; }
[ ! -e "$out" ] || { echo "export_cli_check FAIL: a header was written"; exit 1; }
"$exe" "$checkpoint" -o "$out" --int8 > "$3/cli_check_int8.log" 2>&1
status=$?
cat "$3/cli_check_int8.log"
[ "$status" -eq 1 ] || { echo "export_cli_check FAIL: --int8 without calibration: exit status $status, expected 1"; exit 1; }
grep -q -- '--int8 needs calibration inputs: --calibration-data DIR' "$3/cli_check_int8.log" ||
  { echo "export_cli_check FAIL: --int8 without calibration does not say what is missing"; exit 1; }
[ ! -e "$out" ] || { echo "export_cli_check FAIL: a header was written"; exit 1; }
echo "export_cli_check pass"
