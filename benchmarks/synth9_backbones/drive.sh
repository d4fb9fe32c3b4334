#!/usr/bin/env bash
# issue 11 item 7: the default (lid, cpu preset, ifd_cnn_small_lf) against ifd_cnn_small and plain_cnn on the
# widened 9-family stream, val split (a choice: the default backbone), 3 seeds, 5 epochs per task, one core.
set -euo pipefail
cd "$(dirname "$0")/../.."
IFD=${IFD:-.venv/bin/ifd}
OUT=benchmarks/synth9_backbones
[ -f benchmarks/streams/synth9/stream.json ] || $IFD synth benchmarks/streams/synth9 --families widened --params params.yaml
for bb in ifd_cnn_small_lf ifd_cnn_small plain_cnn; do
  echo "$bb start $(date +%T)"
  $IFD bench benchmarks/streams/synth9 --strategies lid --backbone $bb --epochs 5 --split val --seeds 3 \
    --threads 1 --out $OUT/$bb > $OUT/$bb.log 2>&1
  echo "$bb done $(date +%T)"
done
