"""Throughput of a backbone: training and inference images per second at a given batch size.

Training = forward + cross-entropy + backward + Adam step of backbone + Linear(D, 2) (what one
baseline step costs; LID's step adds a teacher forward and its losses); inference = no-grad forward in
eval mode. Random inputs at the model's image size, after warm-up iterations; on CUDA the clock waits
for the device (`torch.cuda.synchronize`).
"""

from __future__ import annotations

import time
from typing import Any

import torch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rate(step: Any, device: torch.device, batch: int, iters: int, warmup: int) -> float:
    for _ in range(warmup):
        step()
    _sync(device)
    started = time.perf_counter()
    for _ in range(iters):
        step()
    _sync(device)
    return batch * iters / (time.perf_counter() - started)


def measure(
    backbone: str = "ifd_cnn_small",
    img_size: int = 64,
    batch_size: int = 64,
    device: str = "cpu",
    iters: int = 20,
    warmup: int = 3,
    seed: int = 0,
) -> dict[str, Any]:
    """{"train_img_s", "infer_img_s", ...} of `backbone` on `device` (an IfdError if CUDA is asked but absent)."""
    from ifd.bench.tensors import BackboneClassifier
    from ifd.errors import IfdError
    from ifd.models.backbones import create_backbone

    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise IfdError("--device cuda: no CUDA device here")
    torch.manual_seed(seed)
    model = BackboneClassifier(create_backbone(backbone, img_size=img_size)).to(dev)
    x = torch.randn(batch_size, 3, img_size, img_size, device=dev)
    y = torch.randint(0, 2, (batch_size,), device=dev)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

    def train_step() -> None:
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()

    @torch.no_grad()
    def infer_step() -> None:
        model(x)

    model.train()
    train = _rate(train_step, dev, batch_size, iters, warmup)
    model.eval()
    infer = _rate(infer_step, dev, batch_size, iters, warmup)
    return {
        "backbone": backbone,
        "img_size": img_size,
        "batch_size": batch_size,
        "device": device,
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else None,
        "torch_threads": torch.get_num_threads(),
        "parameters": sum(p.numel() for p in model.parameters()),
        "iters": iters,
        "train_img_s": round(train, 1),
        "infer_img_s": round(infer, 1),
    }
