"""Backbone blind spots: each backbone + a linear head trained on one family at a time, AUC on its test split.

The quick check behind the weak low-frequency families of `ifd synth`: a backbone that cannot see a
family's trace stays near 0.5 on it however the continual strategy around it behaves. Plain cross-entropy,
Adam (lr 1e-3, wd 5e-4), batch 32, no augmentation, images normalised as the detector sees them
(`to_model_input`); one torch thread. The full answer (every strategy on the widened stream, 3 seeds) is
`ifd bench` with `--backbone`; this script isolates the backbone.

    .venv/bin/python benchmarks/backbone_probe.py --families lowfreq --backbones plain_cnn,ifd_cnn_small \
        --epochs 8 --seeds 0,1,2 --out benchmarks/backbone_probe.md

Without --stream it writes the stream first (`ifd synth` defaults: 240 images per class, 64 px, seed 0).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn


def train_and_score(backbone: str, data: tuple, epochs: int, seed: int, img_size: int) -> float:
    """AUC on the test split of `backbone` + Linear(D, 2) trained on the train split."""
    from ifd.eval.scoring import auc_score
    from ifd.models.backbones import create_backbone

    (x, y), (xt, yt) = data
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    body = create_backbone(backbone, img_size=img_size)
    model = nn.Sequential(body, nn.Linear(body.num_features, 2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=5e-4)
    for _ in range(epochs):
        model.train()
        for idx in torch.randperm(len(x), generator=gen).split(32):
            if len(idx) < 2:  # BatchNorm needs two samples
                continue
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        p = torch.cat([torch.softmax(model(c), 1)[:, 1] for c in xt.split(256)])
    return float(auc_score(yt.numpy(), p.numpy()))


def load(batch: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    from ifd.data.image_dataset import MEAN, STD
    from ifd.synth.transfer import load_split

    x, y = load_split(batch, split)
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
    return (x - mean) / std, y.long()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--stream", type=Path, help="a stream folder (default: write one with --families)")
    p.add_argument("--families", default="lowfreq", help="families or a set (lowfreq, widened, default)")
    p.add_argument("--backbones", default="plain_cnn,ifd_cnn_small")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--seeds", default="0")
    p.add_argument("--out", type=Path, default=Path("benchmarks/backbone_probe.md"))
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    from ifd.synth.config import SynthConfig
    from ifd.synth.families import expand_families
    from ifd.synth.stream import write_stream

    backbones, seeds = args.backbones.split(","), [int(s) for s in args.seeds.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        stream = args.stream
        if stream is None:
            families = expand_families(args.families.split(","))
            stream = Path(tmp) / "stream"
            write_stream(stream, SynthConfig(tasks=len(families), families=families))
        meta = json.loads((stream / "stream.json").read_text())
        names, size = list(meta["tasks"]), int(meta.get("config", {}).get("size", 64))
        auc = np.zeros((len(names), len(backbones), len(seeds)))
        started = time.perf_counter()
        for i, name in enumerate(names):
            data = (load(stream / name, "train"), load(stream / name, "test"))
            for j, bb in enumerate(backbones):
                for k, seed in enumerate(seeds):
                    auc[i, j, k] = train_and_score(bb, data, args.epochs, seed, size)
                print(f"[probe] {name} {bb}: AUC {auc[i, j].mean():.3f}", file=sys.stderr, flush=True)
    command = " ".join([".venv/bin/python benchmarks/backbone_probe.py", *sys.argv[1:]])
    lines = [
        "# Backbone probe: one family at a time, backbone + linear head",
        "",
        f"AUC on each family's test split, mean ± std over seeds {seeds}; {args.epochs} epochs, {size} px. "
        f"Command: `{command}`; {time.perf_counter() - started:.0f} s.",
        "",
        "| family | " + " | ".join(f"`{b}`" for b in backbones) + " |",
        "|---|" + "---:|" * len(backbones),
        *(f"| {n} | " + " | ".join(f"{auc[i, j].mean():.3f} ± {auc[i, j].std(ddof=1) if len(seeds) > 1 else 0:.3f}"
                                   for j in range(len(backbones))) + " |" for i, n in enumerate(names)),
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
