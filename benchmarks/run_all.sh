#!/usr/bin/env bash
# Regenerate every benchmark in benchmarks/ (see README.md). Hours on a 2-core CPU: the full strategy
# campaign dominates. Override SEEDS / THREADS / JOBS / COST_EPOCHS / PY / IFD in the environment; pass
# stage names to run only some: ./benchmarks/run_all.sh throughput cost. The campaign in README.md ran as
#   THREADS=1 JOBS=2 ./benchmarks/run_all.sh bench && ./benchmarks/run_all.sh cost demo monitor load
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
IFD=${IFD:-.venv/bin/ifd}
SEEDS=${SEEDS:-3}
THREADS=${THREADS:-}
JOBS=${JOBS:-1}
COST_EPOCHS=${COST_EPOCHS:-4}
STAGES=${*:-transfer throughput bench cost demo monitor load soak rss probe}
ALL=lid,lid-no-ida,lid-no-iso,lid-no-dr,lid-no-lsda,lid-random-replay,finetune,naive,replay,ewc,lwf,der,gdumb,agem,icarl,joint-lid,joint-ce
thread_flag=()
[ -n "$THREADS" ] && thread_flag=(--threads "$THREADS")

for stage in $STAGES; do
  case $stage in
    transfer)   # cross-family transfer of the synthetic stream -> synth_transfer.md
      $PY benchmarks/synth_transfer.py ;;
    throughput) # images/s of the default backbone at batch 64 -> throughput.md (CUDA too when present)
      $PY benchmarks/throughput.py --device cpu "${thread_flag[@]}"
      if $PY -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
        $PY benchmarks/throughput.py --device cuda
      fi ;;
    bench)      # every strategy on the 6-task synthetic stream -> synth6/results.{md,json}, plots
      [ -f benchmarks/streams/synth6/stream.json ] || $IFD synth benchmarks/streams/synth6 --tasks 6
      $IFD bench benchmarks/streams/synth6 --strategies "$ALL" --seeds "$SEEDS" --out benchmarks/synth6 \
        --jobs "$JOBS" --reuse "${thread_flag[@]}" ;;
    cost)       # time per increment, LID vs joint, 10-task stream -> cost_growth.{md,png,json}
      $PY benchmarks/cost_growth.py --tasks 10 --seeds 1 --epochs "$COST_EPOCHS" "${thread_flag[@]}" ;;
    demo)       # the whole loop, timed; its workspace feeds the monitor and load stages -> demo.json
      rm -rf .ifd/demo
      /usr/bin/time -f "demo wall %e s" $IFD demo --workspace .ifd/demo --json > benchmarks/demo.json ;;
    monitor)    # false alarms on known data, detection of held-out generators -> monitor_alarms.{md,json}
      $PY benchmarks/monitor_alarms.py --workspace .ifd/demo --seeds 10 ;;
    load)       # today's path vs batching vs batching + ONNX, 1/4/16 clients and 8-image requests -> load_test.{md,json}
      $PY benchmarks/load_test.py --duration 10 ;;
    soak)       # 10 minutes of clients while champion flips and the monitor runs -> soak.{md,json}
      $PY benchmarks/soak.py --duration 600 ;;
    rss)        # peak RSS of an Avalanche baseline at 256 px, lazy vs eager loading -> avalanche_rss.json
      $PY benchmarks/avalanche_rss.py --img-size 256 --tasks 4 --per-class 300 --epochs 1 --strategy naive --out benchmarks/avalanche_rss.json ;;
    probe)      # each backbone + a linear head per family, weak low-frequency families -> backbone_probe.md
      $PY benchmarks/backbone_probe.py --families lowfreq --backbones plain_cnn,ifd_cnn_small,ifd_cnn_small_bn,ifd_cnn_small_rgb --epochs 8 --seeds 0,1 ;;
    *) echo "unknown stage $stage (known: transfer throughput bench cost demo monitor load soak rss probe)" >&2; exit 2 ;;
  esac
done
