#!/bin/sh
# code_budget.sh <nm> <size> <elf> <budget>: the image's text + data, minus the model's weights
# (device_model::model) and the embedded test data (device_data::*), must not exceed <budget> bytes.
nm="$1"; size="$2"; elf="$3"; budget="$4"
total=$("$size" -A -d "$elf" | awk '$1 == ".text" || $1 == ".data" || $1 == ".ARM.exidx" { s += $2 } END { print s + 0 }')
excluded=$("$nm" -S -C -t d --size-sort "$elf" | awk '/ device_model::model$| device_data::/ { s += $2 } END { print s + 0 }')
[ "$excluded" -gt 0 ] || { echo "code_budget FAIL: no device_model::model symbol in $elf"; exit 2; }
code=$((total - excluded))
echo "code_budget: $elf: $total bytes of text+data, $excluded of weights and test data, $code of code (budget $budget)"
if [ "$code" -gt "$budget" ]; then
  echo "code_budget FAIL: $code bytes of code exceed the budget of $budget"
  exit 1
fi
