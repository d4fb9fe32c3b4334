"""One linear decision head per task (SUR-LID, CVPR 2025, arXiv 2411.11396, §LID).

The heads are real submodules in an `nn.ModuleList`: they are trained, moved with the model and
saved in its state dict (the official code kept them in a Python list, so none of that happened).
There is no cap on the number of tasks. Loading a state dict with more heads than the module has
grows the module first, so a saved detector reloads into a fresh one.
"""

from __future__ import annotations

import re
from typing import Any

import torch
from torch import nn

from ifd.errors import IfdError

_HEAD_KEY = re.compile(r"^(\d+)\.weight$")


class TaskHeads(nn.Module):
    """`nn.Linear(in_features, num_classes)` per task; each sample goes through its own task's head."""

    def __init__(self, in_features: int, num_classes: int = 2) -> None:
        super().__init__()
        self.in_features = in_features
        self.num_classes = num_classes
        self.heads = nn.ModuleList()
        self.register_load_state_dict_pre_hook(_grow_before_load)

    def add_head(self) -> int:
        """Append a fresh head (on the device and dtype of the existing ones) and return its task index."""
        head = nn.Linear(self.in_features, self.num_classes)
        if len(self.heads):
            ref = self.heads[0].weight
            head = head.to(device=ref.device, dtype=ref.dtype)
        self.heads.append(head)
        return len(self.heads) - 1

    def __len__(self) -> int:
        return len(self.heads)

    def stacked(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Weights (T, C, D) and biases (T, C) of all heads, differentiable w.r.t. each head."""
        if not len(self.heads):
            raise IfdError("the detector has no task head yet; start a task first")
        weight = torch.stack([h.weight for h in self.heads])
        bias = torch.stack([h.bias for h in self.heads])
        return weight, bias

    def all_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Logits of every head: (B, T, C)."""
        weight, bias = self.stacked()
        return torch.einsum("bd,tcd->btc", z, weight) + bias

    def forward(self, z: torch.Tensor, task_ids: torch.Tensor) -> torch.Tensor:
        """(B, C) logits, sample b through head `task_ids[b]`."""
        task_ids = task_ids.to(device=z.device, dtype=torch.long)
        if task_ids.numel() and (int(task_ids.min()) < 0 or int(task_ids.max()) >= len(self.heads)):
            raise IfdError(
                f"task ids {task_ids.unique().tolist()} outside the {len(self.heads)} existing heads"
            )
        logits = self.all_logits(z)
        return logits[torch.arange(z.shape[0], device=z.device), task_ids]

    def mean_logits(self, z: torch.Tensor) -> torch.Tensor:
        """(B, C): the mean of the logits of exactly the heads that exist (the inference rule of LID)."""
        return self.all_logits(z).mean(dim=1)


def _grow_before_load(module: TaskHeads, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
    """Add heads until the module has as many as `state_dict` names under `prefix`."""
    wanted = 0
    inner = prefix + "heads."
    for key in state_dict:
        if key.startswith(inner):
            match = _HEAD_KEY.match(key[len(inner) :])
            if match:
                wanted = max(wanted, int(match.group(1)) + 1)
    while len(module) < wanted:
        module.add_head()
