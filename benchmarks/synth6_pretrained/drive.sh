#!/usr/bin/env bash
# issue 11 item 8: the strategy table and the ablation on the pretrained backbone (EfficientNet-Lite0,
# ImageNet, the `pretrained` preset as chosen on val), 3 seeds, test read once per run, 2 runs at a time.
# Same budget for all: the preset's input size, epochs and lr, 100 replay samples per task; no per-strategy
# search (the from-scratch table's 3-trial searches cost a session). `lid` also scores the next family as
# an unseen generator (--open-set). Resumable: rerun and finished runs are kept. The Avalanche baselines that
# the first session left out (Naive, EWC, LwF, A-GEM, GDumb) and joint-ce ran in a later session, into
# avalanche/ (its own results.{md,json}; benchmarks/side_by_side.py reads both).
set -euo pipefail
cd "$(dirname "$0")/../.."
IFD=${IFD:-.venv/bin/ifd}
OUT=${OUT:-benchmarks/synth6_pretrained}
STREAM=${STREAM:-benchmarks/streams/synth6}
COMMON="--params benchmarks/params_pretrained.yaml --seeds 3 --threads 1 --jobs 2 --out $OUT"
$IFD bench "$STREAM" --strategies lid --open-set $COMMON
$IFD bench "$STREAM" --strategies joint-lid,lid-no-ida,lid-no-iso,lid-no-dr,lid-no-lsda,lid-random-replay,finetune,replay,der $COMMON
$IFD bench "$STREAM" --strategies naive,ewc,lwf,agem,gdumb,joint-ce --params benchmarks/params_pretrained.yaml \
  --seeds 3 --threads 1 --jobs 2 --out $OUT/avalanche
# lid again into the same folder, so that its table carries paired verdicts against lid
$IFD bench "$STREAM" --strategies lid --open-set --params benchmarks/params_pretrained.yaml \
  --seeds 3 --threads 1 --jobs 2 --out $OUT/avalanche
