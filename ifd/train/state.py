"""Everything that crosses tasks, in one file: config, task names, model (backbone + every head), replay
store, centroids, attribution index, the result matrix and the open-set reports.

The file holds tensors and plain Python only, so `torch.load(weights_only=True)` reads it; the detector is
rebuilt from the config's backbone name with as many heads as tasks learned, then its weights are loaded.
Saving is atomic (temporary file + os.replace): a reader sees the old state or the new one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ifd.errors import IfdError

STATE_VERSION = 1


@dataclass
class IncrementalState:
    """The detector after `len(task_names)` tasks, with what the next increment needs."""

    cfg: Any
    model: nn.Module
    store: Any
    task_names: list[str] = field(default_factory=list)
    matrix: Any = None
    centroids: dict[int, torch.Tensor] = field(default_factory=dict)
    attribution: dict[str, Any] | None = None
    task_roots: dict[str, str] = field(default_factory=dict)
    times_s: list[float] = field(default_factory=list)
    """Seconds each increment took to learn: fit plus replay selection (evaluation excluded)."""
    eval_times_s: list[float] = field(default_factory=list)
    """Seconds each increment's evaluation took: every seen task's test split plus the attribution index."""
    open_set: list[dict[str, Any]] = field(default_factory=list)

    @property
    def n_tasks(self) -> int:
        return len(self.task_names)

    def to_payload(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "config": self.cfg.model_dump(mode="json"),
            "task_names": list(self.task_names),
            "n_heads": len(self.model.heads),
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "store": self.store.state_dict(),
            "centroids": {int(k): v.detach().cpu() for k, v in self.centroids.items()},
            "attribution": self.attribution,
            "matrix": self.matrix.to_dict() if self.matrix is not None else None,
            "task_roots": dict(self.task_roots),
            "times_s": list(self.times_s),
            "eval_times_s": list(self.eval_times_s),
            "open_set": [dict(r) for r in self.open_set],
        }

    def save(self, path: Path) -> Path:
        """Write atomically to `path` (parents created)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        torch.save(self.to_payload(), tmp)
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: Path, map_location: str | torch.device = "cpu") -> IncrementalState:
        """Read a state file written by `save` (weights_only) and rebuild the detector."""
        path = Path(path)
        if not path.is_file():
            raise IfdError(f"{path}: no detector state there")
        try:
            payload = torch.load(path, map_location=map_location, weights_only=True)
        except (RuntimeError, OSError, EOFError) as exc:
            raise IfdError(f"{path}: not a readable detector state ({exc})") from exc
        if not isinstance(payload, dict) or payload.get("version") != STATE_VERSION:
            raise IfdError(f"{path}: not a detector state of version {STATE_VERSION}")
        return cls.from_payload(payload)

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> IncrementalState:
        from ifd.continual.config import LIDConfig
        from ifd.continual.replay_store import ReplayStore
        from ifd.eval.matrix import ResultMatrix

        cfg = LIDConfig.model_validate(payload["config"])
        model = build_detector(cfg, n_heads=int(payload["n_heads"]), pretrained=False)
        model.load_state_dict(payload["model"])
        store = ReplayStore(features_only=bool(cfg.features_only))
        store.load_state_dict(payload["store"])
        matrix = ResultMatrix.from_dict(payload["matrix"]) if payload.get("matrix") is not None else None
        return cls(
            cfg=cfg,
            model=model,
            store=store,
            task_names=list(payload["task_names"]),
            matrix=matrix,
            centroids={int(k): v for k, v in payload["centroids"].items()},
            attribution=payload.get("attribution"),
            task_roots=dict(payload.get("task_roots", {})),
            times_s=[float(t) for t in payload.get("times_s", [])],
            eval_times_s=[float(t) for t in payload.get("eval_times_s", [])],
            open_set=[dict(r) for r in payload.get("open_set", [])],
        )


def build_detector(cfg: Any, n_heads: int = 0, pretrained: bool = True) -> nn.Module:
    """An IncrementalDetector on the config's backbone with `n_heads` heads; local weights only when `pretrained`."""
    from ifd.continual.detector import IncrementalDetector
    from ifd.models.backbones import create_backbone

    weights = getattr(cfg, "backbone_weights", None) if pretrained else None
    backbone = create_backbone(
        cfg.backbone, weights=Path(weights) if weights else None, img_size=cfg.img_size, pretrained=pretrained
    )
    model = IncrementalDetector(backbone)
    for _ in range(n_heads):
        model.start_task()
    return model
