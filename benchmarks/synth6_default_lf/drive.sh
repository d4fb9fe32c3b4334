#!/usr/bin/env bash
# The new default backbone (ifd_cnn_small_lf, chosen on benchmarks/synth9_backbones/) on the shipped 6-task
# stream, with the from-scratch table's tuned `lid` values (benchmarks/synth6_val_protocol/tuning/tuned.yaml),
# 3 seeds, test read once, 5 epochs: the `lid`, `joint-lid`, `replay` and `der` rows of that table rerun on the new backbone, plus every
# unknown-generator score (--open-set) with source-level held-out calibration.
set -euo pipefail
cd "$(dirname "$0")/../.."
IFD=${IFD:-.venv/bin/ifd}
$IFD bench benchmarks/streams/synth6 --strategies lid --open-set --epochs 5 --seeds 3 \
  --baseline-params benchmarks/synth6_val_protocol/tuning/tuned.yaml --threads 1 --jobs 2 --out benchmarks/synth6_default_lf
# its upper bound on the same backbone (LID's losses and heads on all data so far; same tuned values)
$IFD bench benchmarks/streams/synth6 --strategies joint-lid --open-set --epochs 5 --seeds 3 \
  --baseline-params benchmarks/synth6_val_protocol/tuning/tuned.yaml --threads 1 --jobs 2 --out benchmarks/synth6_default_lf
# the two closest baselines of that table on the same backbone (their tuned values from the same file)
$IFD bench benchmarks/streams/synth6 --strategies replay,der --open-set --epochs 5 --seeds 3 \
  --baseline-params benchmarks/synth6_val_protocol/tuning/tuned.yaml --threads 1 --jobs 2 --out benchmarks/synth6_default_lf
