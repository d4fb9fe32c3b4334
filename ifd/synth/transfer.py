"""Cross-family transfer of the synthetic stream: train on one family, test on every family.

The matrix says whether the stream can show forgetting: a high diagonal (each family's trace is
learnable) and off-diagonal AUCs near 0.5 (a detector of one family does not catch the others), as in
the cross-manipulation tables of FaceForensics++ (Rossler et al., ICCV 2019). Plain torch on the CPU.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from sklearn.metrics import roc_auc_score
from torch import nn

from ifd.data.manifest import LABEL_TO_INT, read_manifest
from ifd.errors import IfdError
from ifd.synth.stream import STREAM_FILE


class ProbeCNN(nn.Module):
    """A small from-scratch CNN: no stride in the first layer, so pixel-level traces survive."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        chans = [3, width, 2 * width, 4 * width, 4 * width]
        layers: list[nn.Module] = []
        for i, (cin, cout) in enumerate(zip(chans[:-1], chans[1:], strict=True)):
            layers += [nn.Conv2d(cin, cout, 3, stride=1 if i == 0 else 2, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(chans[-1], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features((x - 0.5) / 0.25)).squeeze(1)


def load_split(batch_dir: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (N, 3, H, W) in [0, 1] and labels (N,) {0 real, 1 fake} of one split of a batch."""
    frame = read_manifest(batch_dir)
    frame = frame[frame["split"] == split]
    if frame.empty:
        raise IfdError(f"{batch_dir}: no rows in split {split!r}")
    images = np.stack([np.asarray(Image.open(batch_dir / p).convert("RGB")) for p in frame["path"]])
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    y = torch.tensor([LABEL_TO_INT[v] for v in frame["label"]], dtype=torch.float32)
    return x, y


def train_probe(x: torch.Tensor, y: torch.Tensor, epochs: int, seed: int, batch: int = 32) -> ProbeCNN:
    """Adam, BCE, `epochs` passes in a seeded order; no augmentation (flips would move a fixed pattern)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ProbeCNN()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=epochs * -(-len(x) // batch))
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=gen).split(batch):
            loss = nn.functional.binary_cross_entropy_with_logits(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return model.eval()


@torch.no_grad()
def auc(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    scores = torch.cat([model(chunk) for chunk in x.split(256)])
    return float(roc_auc_score(y.numpy(), scores.numpy()))


def cross_family_matrix(stream_dir: Path, epochs: int = 8, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """(task names, auc) with auc[i, j] = AUC on task j's test split of a probe trained on task i's train split."""
    stream_dir = Path(stream_dir)
    meta = stream_dir / STREAM_FILE
    if not meta.is_file():
        raise IfdError(f"{stream_dir}: no {STREAM_FILE}; write the stream with `ifd synth` first")
    names = list(json.loads(meta.read_text())["tasks"])
    tests = {n: load_split(stream_dir / n, "test") for n in names}
    matrix = np.zeros((len(names), len(names)))
    for i, name in enumerate(names):
        model = train_probe(*load_split(stream_dir / name, "train"), epochs=epochs, seed=seed + i)
        for j, other in enumerate(names):
            matrix[i, j] = auc(model, *tests[other])
    return names, matrix


def matrix_markdown(names: list[str], matrix: np.ndarray) -> str:
    """The matrix as a Markdown table: rows = trained on, columns = tested on."""
    head = "| trained on \\ tested on | " + " | ".join(names) + " |"
    rule = "|---|" + "---:|" * len(names)
    rows = [f"| {n} | " + " | ".join(f"{v:.3f}" for v in matrix[i]) + " |" for i, n in enumerate(names)]
    return "\n".join([head, rule, *rows])
