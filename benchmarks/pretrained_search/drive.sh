#!/usr/bin/env bash
# issue 11 item 2: lid:pretrained on synth6's val split, seed 0, a 2x2x2 grid (input size x lr x epochs);
# the 96 px / lr 2e-4 / 2 epochs cell is benchmarks/probe_pretrained_size/img96. One core (--threads 1).
set -euo pipefail
cd "$(dirname "$0")/../.."

IFD=${IFD:-.venv/bin/ifd}
OUT=benchmarks/pretrained_search
for cell in "64 0.001 2" "64 0.0002 2" "64 0.001 5" "64 0.0002 5" "96 0.001 2" "96 0.001 5" "96 0.0002 5"; do
  set -- $cell
  echo "cell img $1 lr $2 epochs $3 start $(date +%T)"
  $IFD bench benchmarks/streams/synth6 --strategies lid:pretrained --img-size $1 --lr $2 --epochs $3 \
    --split val --seeds 1 --threads 1 --out $OUT/img$1_lr$2_ep$3 > $OUT/img$1_lr$2_ep$3.log 2>&1
  echo "cell img $1 lr $2 epochs $3 done $(date +%T)"
done
