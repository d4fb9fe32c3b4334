"""Training and inference throughput (images/s) of a backbone -> benchmarks/throughput.{md,json}.

    .venv/bin/python benchmarks/throughput.py [--device cpu|cuda] [--backbone ifd_cnn_small] [--img-size 64]
        [--batch-size 64] [--threads N] [--iters 10]

Defaults: the backbone and image size of params.yaml's preset, batch 64. Each (device, backbone, size,
batch, threads) measurement replaces its own row in throughput.json; the Markdown table is rewritten
from all rows, so CPU and GPU numbers sit side by side. See ifd/bench/throughput.py for what is timed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def _row_key(r: dict) -> tuple:
    return (r["device"], r.get("device_name"), r["backbone"], r["img_size"], r["batch_size"], r["torch_threads"])


def markdown(rows: list[dict]) -> str:
    lines = [
        "# Throughput of the backbone",
        "",
        "Images per second of backbone + Linear(D, 2): training = forward + cross-entropy + backward + Adam step;",
        "inference = no-grad forward in eval mode. Random inputs, after warm-up; CUDA timings synchronise the device.",
        "Command: `.venv/bin/python benchmarks/throughput.py [--device cuda]`. Load: the 1-minute load average",
        "when the measurement started (a busy machine gives lower numbers; compare rows taken on an idle one).",
        "",
        "| device | backbone | params | px | batch | torch threads | train img/s | inference img/s | load | date |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        dev = r["device_name"] or f"{r['cpu']} ({r['cores']} cores)"
        lines.append(
            f"| {r['device']}: {dev} | {r['backbone']} | {r['parameters'] / 1e6:.2f} M | {r['img_size']} | {r['batch_size']} | "
            f"{r['torch_threads']} | {r['train_img_s']:.1f} | {r['infer_img_s']:.1f} | {r.get('load_avg_1min', '-')} | {r['date']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    import torch

    from ifd.bench.runner import machine
    from ifd.bench.throughput import measure
    from ifd.config import load_config

    lid = load_config(HERE.parent / "params.yaml").lid()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--backbone", default=lid.backbone)
    p.add_argument("--img-size", dest="img_size", type=int, default=lid.img_size)
    p.add_argument("--batch-size", dest="batch_size", type=int, default=64)
    p.add_argument("--threads", type=int, help="torch threads (default: torch's own)")
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--out", default=str(HERE / "throughput"), help="output stem (.md and .json are added)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    load = round(os.getloadavg()[0], 2)
    row = measure(args.backbone, args.img_size, args.batch_size, args.device, iters=args.iters, warmup=2)
    row.update({"load_avg_1min": load, "cpu": machine()["cpu"], "cores": machine()["cores"], "torch": torch.__version__,
                "date": dt.date.today().isoformat()})
    out = Path(args.out)
    rows = json.loads(out.with_suffix(".json").read_text())["rows"] if out.with_suffix(".json").is_file() else []
    rows = [r for r in rows if _row_key(r) != _row_key(row)] + [row]
    out.with_suffix(".json").write_text(json.dumps({"rows": rows}, indent=1) + "\n")
    out.with_suffix(".md").write_text(markdown(rows))
    print(json.dumps(row, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
