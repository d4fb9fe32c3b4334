#!/usr/bin/env bash
# The strategy table under issue 12's rules, in three resumable stages (each skips the (strategy, seed)
# runs its --out already holds, so it can be stopped and rerun in pieces across sessions):
#   1. presets  : the shipped presets, each as written (base: benchmarks/params_presets.yaml) at one replay
#                 budget, compared on the *val* matrix (selection; test not read). If another preset than
#                 params.yaml's `cpu` wins, set train.preset to it before stage 2 and say so in benchmarks/.
#   2. tuning   : every strategy gets the same search on val (lr + its main coefficient) -> tuned.yaml
#   3. report   : every strategy, tuned, 3 seeds, test read once per run -> results.{md,json} with
#                 mean ± std, 95% bootstrap intervals, paired "above/below" verdicts, joint-lid / joint-ce
# Usage: THREADS=1 JOBS=2 ./benchmarks/campaign_val_protocol.sh [presets] [tuning] [report]
# Override SEEDS / TRIALS / THREADS / JOBS / STREAM / OUT / IFD / PY / PRESETS / TUNED / REPORT in the environment;
# EXTRA adds shared options to every stage (e.g. EXTRA="--epochs 1 --backbone ifd_cnn_tiny --img-size 32" for a
# smoke run), TUNE_EXTRA options to the tuning stage only (e.g. TUNE_EXTRA="--tasks 3": search on the first 3 tasks).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
IFD=${IFD:-.venv/bin/ifd}
SEEDS=${SEEDS:-3}
TRIALS=${TRIALS:-8}
THREADS=${THREADS:-1}
JOBS=${JOBS:-2}
STREAM=${STREAM:-benchmarks/streams/synth6}
OUT=${OUT:-benchmarks/synth6_val_protocol}
EXTRA=${EXTRA:-}
STAGES=${*:-presets tuning report}
PRESETS=${PRESETS:-lid:cpu,lid:official,lid:paper,lid:cpu-ida-paper}
TUNED=${TUNED:-lid,finetune,naive,replay,ewc,lwf,der,gdumb,agem,joint-lid,joint-ce}
REPORT=${REPORT:-lid,lid:cpu-ida-paper,lid-no-ida,lid-no-iso,lid-no-dr,lid-no-lsda,lid-random-replay,finetune,naive,replay,ewc,lwf,der,gdumb,agem,icarl,joint-lid,joint-ce}
TUNE_EXTRA=${TUNE_EXTRA:-}

[ -f "$STREAM/stream.json" ] || $IFD synth "$STREAM" --tasks 6
for stage in $STAGES; do
  case $stage in
    presets) $IFD bench "$STREAM" --strategies "$PRESETS" --seeds "$SEEDS" --split val --out "$OUT/presets_val" \
               --params benchmarks/params_presets.yaml --budget "${BUDGET:-100}" --threads "$THREADS" --jobs "$JOBS" $EXTRA ;;
    tuning)  $PY benchmarks/tune_strategies.py "$STREAM" --strategies "$TUNED" --n-trials "$TRIALS" \
               --out "$OUT/tuning" --threads "$THREADS" $EXTRA $TUNE_EXTRA ;;
    report)  $IFD bench "$STREAM" --strategies "$REPORT" --seeds "$SEEDS" --baseline-params "$OUT/tuning/tuned.yaml" \
               --out "$OUT/report" --threads "$THREADS" --jobs "$JOBS" $EXTRA ;;
    *) echo "unknown stage $stage (known: presets tuning report)" >&2; exit 2 ;;
  esac
done
