#!/usr/bin/env bash
# Where the low-frequency families fail: first in the stream (no distillation, no replay) vs after six tasks.
set -euo pipefail
cd "$(dirname "$0")/../.."
IFD=${IFD:-.venv/bin/ifd}
OUT=benchmarks/synth9_backbones/lowfreq3
[ -f benchmarks/streams/lowfreq3/stream.json ] || $IFD synth benchmarks/streams/lowfreq3 --families lowfreq --params params.yaml
for bb in plain_cnn ifd_cnn_small; do
  $IFD bench benchmarks/streams/lowfreq3 --strategies lid,joint-ce --backbone $bb --epochs 5 --split val --seeds 1 \
    --threads 1 --out $OUT/$bb > $OUT-$bb.log 2>&1
done
# the low-frequency branch (the default since it was measured on synth9): lid only
$IFD bench benchmarks/streams/lowfreq3 --strategies lid --backbone ifd_cnn_small_lf --epochs 5 --split val --seeds 1 \
  --threads 1 --out $OUT/ifd_cnn_small_lf > $OUT-ifd_cnn_small_lf.log 2>&1
