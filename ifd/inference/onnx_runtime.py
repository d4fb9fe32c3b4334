"""The detector as one ONNX graph run by ONNX Runtime: exported when a version is registered, checked
against eager PyTorch on a fixed batch when it is loaded, eager PyTorch whenever it is absent or differs.

What the graph covers: uint8 pixels (N, 3, S, S) -> `p_fake` (N,) and `embedding` (N, D), i.e. input
normalisation, backbone, the mean of every task head's logits and the Platt calibration. Decisions:
- uint8 in: the API hands over decoded pixels, a quarter of the bytes of float input, and normalisation
  cannot then differ between the two runtimes;
- heads and calibration in: `p_fake` is the number the answer carries and the parity gate compares;
- the pooled embedding out: attribution to a known generator, the unknown score (nearest fake cluster,
  `ifd/eval/attribution.py`) and the drift monitor's MMD all start from it; the nearest-cluster search
  stays in numpy, where it is a few hundred multiply-adds per image and returns generator names.
The number of heads and the calibration are constants of a version, so they are baked into its graph.

Measured (`benchmarks/runtime_choice.py`: ifd_cnn_small, 64 px, 6 heads; ms per call at batch 1 / 32):
on the idle 2-core machine with 2 threads, eager 1.8 / 18.4, ONNX Runtime 0.73 / 19.0, `torch.compile`
(inductor, dynamic batch; 22 s to compile) 1.85 / 188; on the same machine under a load average of 7-8,
with 1 thread eager 3.8 / 72, ONNX Runtime 0.79 / 63, and with 2 threads eager 178 / 1002 (its OpenMP
threads spin against the other processes), ONNX Runtime 0.87 / 106 (its spinning is switched off here).
ONNX Runtime is what we ship: 2.5-5x faster at batch 1 (where a lightly loaded server spends its time),
level with eager at batch 32 on an idle machine, and far more robust on a shared CPU. The TorchScript exporter (`dynamo=False`, 0.1-1.4 s)
writes the graph; the dynamo exporter (3-12 s, same parity) is the fallback.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ifd.errors import IfdError

ONNX_FILE = "detector.onnx"
ONNX_ARTIFACT = "onnx"
"""The name of the graph among the registered model's artifacts (next to `state`)."""
P_FAKE_TOL = 1e-4
EMBEDDING_TOL = 1e-3
RUNTIMES = ("auto", "onnx", "eager")
Forward = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
logger = logging.getLogger("ifd.serving")


class RuntimeUnavailable(IfdError):
    """`runtime: onnx` was asked for and the version has no ONNX graph that matches eager scoring."""

    exit_code = 2


class _DetectorGraph(nn.Module):
    """uint8 pixels -> (calibrated p_fake, pooled embedding): exactly what `DetectorScorer` computes eagerly."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        from ifd.data.image_dataset import to_model_input

        z = self.model.forward_features(to_model_input(pixels))
        return self.model.p_fake(z).float(), z.float()


def parity_batch(img_size: int, n: int = 16, seed: int = 0) -> torch.Tensor:
    """The fixed batch both runtimes score: seeded noise, flat grey, gradients and stripes (uint8 (n, 3, S, S))."""
    rng = np.random.default_rng(seed)
    out = rng.integers(0, 256, (max(n, 5), 3, img_size, img_size), dtype=np.uint8)
    ramp = np.linspace(0, 255, img_size).astype(np.uint8)
    out[1] = 128
    out[2] = ramp[None, None, :]
    out[3] = ramp[None, :, None]
    out[4, :, :, ::2] = 255
    out[4, :, :, 1::2] = 0
    return torch.from_numpy(out[:n].copy())


def export_onnx(model: nn.Module, img_size: int, out: Path) -> Path:
    """Write the model's graph (dynamic batch) to `out`; the TorchScript exporter first, then dynamo."""
    graph = _DetectorGraph(model).eval()
    example = (parity_batch(img_size, n=2),)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    # The exporters warn about traced constants (head count, calibration: constants of a version, on
    # purpose) and about their own internals; parity on the fixed batch is what decides, not the warnings.
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                graph, example, str(tmp), dynamo=False, opset_version=17,
                input_names=["pixels"], output_names=["p_fake", "embedding"],
                dynamic_axes={"pixels": {0: "n"}, "p_fake": {0: "n"}, "embedding": {0: "n"}},
            )
        except Exception as first:  # noqa: BLE001  (any exporter failure: try the other exporter)
            logger.info("TorchScript ONNX export failed (%s); trying the dynamo exporter", first)
            batch = torch.export.Dim("n", min=1, max=65536)
            torch.onnx.export(
                graph, example, str(tmp), dynamo=True, external_data=False, verbose=False,
                input_names=["pixels"], output_names=["p_fake", "embedding"], dynamic_shapes={"pixels": {0: batch}},
            )
    tmp.replace(out)
    return out


class OnnxForward:
    """An ONNX Runtime session on the CPU: uint8 pixels -> (p_fake, embedding) as torch tensors."""

    def __init__(self, path: Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads or torch.get_num_threads())
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle ORT threads otherwise spin for a while after each run, taking CPU from the HTTP side.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001  (ORT raises its own exception types for bad files)
            raise RuntimeUnavailable(f"{path}: ONNX Runtime cannot load the graph ({_first_line(exc)})") from exc
        self.path = Path(path)

    def __call__(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        arr = np.ascontiguousarray(pixels.cpu().numpy(), dtype=np.uint8)
        p, z = self.session.run(None, {"pixels": arr})
        return torch.from_numpy(p), torch.from_numpy(z)


@dataclass
class Parity:
    """Largest differences of ONNX Runtime against eager on the fixed batch (and on one image alone)."""

    max_dp: float
    max_dz: float

    @property
    def ok(self) -> bool:
        return self.max_dp <= P_FAKE_TOL and self.max_dz <= EMBEDDING_TOL

    def describe(self) -> str:
        return f"max |dp_fake| {self.max_dp:.2e} (limit {P_FAKE_TOL:g}), max |d embedding| {self.max_dz:.2e} (limit {EMBEDDING_TOL:g})"


def check_parity(eager: Forward, onnx: Forward, img_size: int) -> Parity:
    """Both runtimes on the fixed batch, and on its first image alone (the batch axis must stay dynamic)."""
    batch = parity_batch(img_size)
    with torch.no_grad():
        pe, ze = eager(batch)
        pe1, ze1 = eager(batch[:1])
    po, zo = onnx(batch)
    po1, zo1 = onnx(batch[:1])
    if po.shape != pe.shape or zo.shape != ze.shape or po1.shape != pe1.shape:
        return Parity(float("inf"), float("inf"))
    dp = max(float((pe - po).abs().max()), float((pe1 - po1).abs().max()))
    dz = max(float((ze - zo).abs().max()), float((ze1 - zo1).abs().max()))
    return Parity(dp if np.isfinite(dp) else float("inf"), dz if np.isfinite(dz) else float("inf"))


def export_state(state_path: Path, out: Path | None = None) -> tuple[Path, Parity]:
    """Export the detector in a state file next to it (or to `out`) and check parity; the graph is kept
    only when parity holds (otherwise `RuntimeUnavailable` says by how much it missed)."""
    from ifd.inference.scorer import DetectorScorer
    from ifd.train.state import IncrementalState

    scorer = DetectorScorer(IncrementalState.load(Path(state_path)), device="cpu")
    out = Path(out) if out is not None else Path(state_path).with_name(ONNX_FILE)
    export_onnx(scorer.model, scorer.img_size, out)
    parity = check_parity(scorer.eager_forward, OnnxForward(out), scorer.img_size)
    if not parity.ok:
        out.unlink(missing_ok=True)
        raise RuntimeUnavailable(f"the exported ONNX graph differs from eager scoring: {parity.describe()}")
    return out, parity


def registration_artifacts(state_path: str | Path, log: Callable[[str], None] | None = None) -> dict[str, str]:
    """{ONNX_ARTIFACT: path} to log with a new version, or {} when the export fails (the version is then
    served eagerly; the failure is logged, never raised: registration must not depend on an exporter)."""
    say = log or logger.info
    started = time.perf_counter()
    try:
        path, parity = export_state(Path(state_path))
    except Exception as exc:  # noqa: BLE001  (see the docstring)
        say(f"[onnx] no ONNX graph for this version, it will be served eagerly ({_first_line(exc)})")
        return {}
    say(f"[onnx] exported {path.name} in {time.perf_counter() - started:.1f} s; {parity.describe()}")
    return {ONNX_ARTIFACT: str(path)}


def attach_runtime(scorer: Any, onnx_path: Path | None, mode: str = "auto", version: str = "?") -> None:
    """Make `scorer` run on ONNX Runtime when `mode` allows and its graph passes parity; otherwise leave it
    eager and record why in `scorer.runtime_fallback` (`mode == "onnx"` raises instead of falling back)."""
    if mode not in RUNTIMES:
        raise IfdError(f"runtime must be one of {', '.join(RUNTIMES)}, got {mode!r}")
    if mode == "eager":
        return
    reason = _onnx_refusal(scorer, onnx_path)
    if reason is None:
        return
    if mode == "onnx":
        raise RuntimeUnavailable(f"runtime onnx: version {version}: {reason}; serve with --runtime auto or eager")
    scorer.runtime_fallback = reason
    logger.warning("serving version %s in eager PyTorch: %s", version, reason)


def _onnx_refusal(scorer: Any, onnx_path: Path | None) -> str | None:
    """None after switching `scorer` to ONNX Runtime, else the reason it stays eager."""
    if scorer.device.type != "cpu":
        return f"the scorer runs on {scorer.device.type} and the ONNX graph on the CPU"
    if onnx_path is None or not Path(onnx_path).is_file():
        return "the version has no ONNX graph (registered before graphs were exported, or its export failed)"
    try:
        onnx = OnnxForward(Path(onnx_path))
        parity = check_parity(scorer.eager_forward, onnx, scorer.img_size)
    except Exception as exc:  # noqa: BLE001  (an unreadable or mismatched graph is a fallback, not an outage)
        return f"the ONNX graph does not run ({_first_line(exc)})"
    if not parity.ok:
        return f"the ONNX graph fails the parity check: {parity.describe()}"
    scorer.use_forward(onnx, "onnx", parity.max_dp)
    return None


def _first_line(exc: BaseException) -> str:
    """`Type: first line of the message` (ORT and torch messages run over many lines)."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:300] if text else ''}"
