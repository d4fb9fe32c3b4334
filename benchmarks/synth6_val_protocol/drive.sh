#!/usr/bin/env bash
# session driver: presets -> tuning (two halves in parallel) -> merge -> report, 5 epochs per task
set -euo pipefail
cd /work/campaign
export PYTHONPATH=/work/campaign PY=/work/main/.venv/bin/python IFD=/work/main/.venv/bin/ifd
export THREADS=1 JOBS=2 SEEDS=3 TRIALS=3 EXTRA="--epochs 5" OUT=benchmarks/synth6_val_protocol
echo "tuning start $(date)"
TUNED=lid,ewc,der,agem OUT=$OUT/a TUNE_EXTRA="--tasks 3" JOBS=1 ./benchmarks/campaign_val_protocol.sh tuning > /work/logs/tune_a.log 2>&1 &
TUNED=lwf,replay,naive,gdumb OUT=$OUT/b TUNE_EXTRA="--tasks 3" JOBS=1 ./benchmarks/campaign_val_protocol.sh tuning > /work/logs/tune_b.log 2>&1 &
wait
echo "tuning done $(date)"
mkdir -p $OUT/tuning
$PY - <<'PY'
import yaml, pathlib
o = pathlib.Path("benchmarks/synth6_val_protocol")
merged = {}
for h in "ab":
    merged.update(yaml.safe_load((o / h / "tuning" / "tuned.yaml").read_text()) or {})
(o / "tuning" / "tuned.yaml").write_text(yaml.safe_dump(merged, sort_keys=True))
print(merged)
PY
echo "report start $(date)"
REPORT=lid,lid:cpu-ida-paper,finetune,naive,replay,ewc,lwf,der,gdumb,agem,icarl,joint-lid,joint-ce ./benchmarks/campaign_val_protocol.sh report
echo "report done $(date)"
