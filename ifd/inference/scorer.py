"""The detector's full scorer: calibrated p(fake) from the mean of all task heads (LID inference), a label
at the policy threshold, the generator an image labelled fake most resembles, and whether the image lies
beyond the calibrated unknown-generator threshold (ifd/eval/attribution.py; any label: an unseen
generator's fakes are mostly scored real), plus the pooled embedding the drift monitor compares.

The network part (uint8 pixels -> p(fake), embedding) is a swappable forward: eager PyTorch by default,
or the version's ONNX graph once it passed the parity check (ifd/inference/onnx_runtime.py); `runtime`
says which one scores and `runtime_fallback` why a graph was not used."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ifd.data.image_dataset import to_model_input
from ifd.inference.decode import DecodeLimits, to_pixels


@dataclass
class Scores:
    """Per image, in input order."""

    p_fake: np.ndarray
    label: list[str]
    generator: list[str | None]
    unknown: np.ndarray
    unknown_score: np.ndarray
    embeddings: np.ndarray

    def __len__(self) -> int:
        return len(self.p_fake)

    def take(self, start: int, stop: int) -> Scores:
        """The scores of inputs `start`..`stop - 1` (one request's share of a batch)."""
        return Scores(
            self.p_fake[start:stop], self.label[start:stop], self.generator[start:stop],
            self.unknown[start:stop], self.unknown_score[start:stop], self.embeddings[start:stop],
        )

    def rows(self) -> list[dict[str, Any]]:
        return [
            {"p_fake": float(p), "label": lab, "generator": g, "unknown": bool(u), "unknown_score": float(s)}
            for p, lab, g, u, s in zip(self.p_fake, self.label, self.generator, self.unknown, self.unknown_score, strict=True)
        ]


class DetectorScorer:
    """Scores images with an incremental detector state (`ifd.train.state.IncrementalState`)."""

    def __init__(self, state: Any, threshold: float = 0.5, batch_size: int = 64, device: str | None = None) -> None:
        from ifd.eval.attribution import AttributionIndex

        self.state = state
        self.model = state.model.eval()
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.model.to(self.device)
        self.img_size = int(state.cfg.img_size)
        self.threshold = float(threshold)
        self.batch_size = batch_size
        self.index = AttributionIndex.from_dict(state.attribution) if state.attribution else None
        self._forward: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]] = self.eager_forward
        self.runtime = "eager"
        self.runtime_fallback: str | None = None
        """Why the version's ONNX graph is not used (None when it is, or when eager was asked for)."""
        self.parity_max_dp: float | None = None

    @property
    def tasks(self) -> list[str]:
        return list(self.state.task_names)

    def pixels(self, items: Sequence[Any], limits: DecodeLimits | None = None) -> torch.Tensor:
        """Decode every input (errors name the input's position) into (N, 3, S, S) uint8."""
        if not len(items):
            return torch.zeros(0, 3, self.img_size, self.img_size, dtype=torch.uint8)
        return torch.stack([to_pixels(it, self.img_size, f"image {i}", limits) for i, it in enumerate(items)])

    @torch.no_grad()
    def eager_forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 (N, 3, S, S) -> p(fake) (N,) and pooled embeddings (N, D), on the CPU, in eager PyTorch."""
        z = self.model.forward_features(to_model_input(pixels.to(self.device)))
        return self.model.p_fake(z).float().cpu(), z.float().cpu()

    def use_forward(self, forward: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]], name: str,
                    parity_max_dp: float | None = None) -> None:
        """Score with `forward` from now on (it must compute what `eager_forward` does)."""
        self._forward = forward
        self.runtime = name
        self.runtime_fallback = None
        self.parity_max_dp = parity_max_dp

    @torch.no_grad()
    def score_pixels(self, pixels: torch.Tensor) -> Scores:
        """Scores of uint8 images (N, 3, S, S)."""
        ps, zs = [], []
        for chunk in pixels.split(self.batch_size):
            p, z = self._forward(chunk)
            ps.append(p)
            zs.append(z)
        p = torch.cat(ps).numpy() if ps else np.zeros(0)
        z = torch.cat(zs) if zs else torch.zeros(0, int(self.model.num_features))
        labels = ["fake" if v >= self.threshold else "real" for v in p]
        if self.index is not None and len(p):
            names, dist, flag = self.index.attribute(z)
        else:
            names, dist, flag = [None] * len(p), np.zeros(len(p)), np.zeros(len(p), dtype=bool)
        generator = [g if lab == "fake" else None for g, lab in zip(names, labels, strict=True)]
        return Scores(p, labels, generator, np.asarray(flag, dtype=bool), np.asarray(dist, dtype=np.float64), z.numpy())

    def score(self, items: Sequence[Any], limits: DecodeLimits | None = None) -> Scores:
        """Scores of paths, bytes, PIL images or arrays."""
        return self.score_pixels(self.pixels(items, limits))
