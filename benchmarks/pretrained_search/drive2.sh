#!/usr/bin/env bash
# second round of the grid, from the first's reading (lr 1e-3 collapses to chance, more epochs help):
# lr 5e-4 between the two, and 10 epochs at 64 px (the cost of 96 px at 5 epochs). Seed 0, val, one core.
set -euo pipefail
cd "$(dirname "$0")/../.."

IFD=${IFD:-.venv/bin/ifd}
OUT=benchmarks/pretrained_search
for cell in "64 0.0005 5" "64 0.0002 10"; do
  set -- $cell
  echo "cell img $1 lr $2 epochs $3 start $(date +%T)"
  $IFD bench benchmarks/streams/synth6 --strategies lid:pretrained --img-size $1 --lr $2 --epochs $3 \
    --split val --seeds 1 --threads 1 --out $OUT/img$1_lr$2_ep$3 > $OUT/img$1_lr$2_ep$3.log 2>&1
  echo "cell img $1 lr $2 epochs $3 done $(date +%T)"
done
