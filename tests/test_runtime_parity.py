"""The ONNX runtime: the exported graph matches eager PyTorch on the fixed batch (max |dp_fake| <= 1e-4) for
ifd's backbones and timm ones; a missing, broken or mismatched graph falls back to eager (auto) or is
refused (onnx); a registered version carries its graph and the API serves it, with the runtime on /metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from lifecycle_helpers import fresh_workspace, tiny_lid

from ifd.continual.config import LIDConfig
from ifd.continual.replay_store import ReplayStore
from ifd.inference import onnx_runtime as rt_onnx
from ifd.inference.onnx_runtime import (
    P_FAKE_TOL,
    OnnxForward,
    RuntimeUnavailable,
    attach_runtime,
    check_parity,
    export_state,
    parity_batch,
)
from ifd.inference.scorer import DetectorScorer
from ifd.train.state import IncrementalState, build_detector

QUIET = lambda _: None  # noqa: E731


def write_state(folder: Path, backbone: str, img_size: int, heads: int = 3, seed: int = 0) -> Path:
    """A detector state with `heads` task heads, random weights (seeded) and a non-trivial calibration."""
    torch.manual_seed(seed)
    cfg = LIDConfig(backbone=backbone, img_size=img_size)
    model = build_detector(cfg, n_heads=heads, pretrained=False).eval()
    model.set_calibration(1.7, -0.3)
    state = IncrementalState(cfg=cfg, model=model, store=ReplayStore(), task_names=[f"t{i}" for i in range(heads)])
    return state.save(Path(folder) / "state.pt")


def scorer_of(path: Path) -> DetectorScorer:
    return DetectorScorer(IncrementalState.load(path), device="cpu")


@pytest.mark.parametrize(
    ("backbone", "img_size"),
    [("ifd_cnn_tiny", 16), ("ifd_cnn_small", 64), ("ifd_cnn_small_lf", 64), ("test_efficientnet", 64), ("test_resnet", 32)],
)
def test_onnx_graph_matches_eager_on_the_fixed_batch(tmp_path: Path, backbone: str, img_size: int) -> None:
    state = write_state(tmp_path, backbone, img_size)
    graph, parity = export_state(state)
    assert graph.is_file() and parity.ok and parity.max_dp <= P_FAKE_TOL
    eager, onnx = scorer_of(state), scorer_of(state)
    attach_runtime(onnx, graph, "onnx")
    assert onnx.runtime == "onnx" and onnx.runtime_fallback is None
    # batch sizes other than the export's example (2), larger than the scorer's chunk too
    for n in (1, 7, 70):
        px = parity_batch(img_size, n=n, seed=n)
        a, b = eager.score_pixels(px), onnx.score_pixels(px)
        assert np.abs(a.p_fake - b.p_fake).max() <= P_FAKE_TOL
        assert np.abs(a.embeddings - b.embeddings).max() <= rt_onnx.EMBEDDING_TOL
        assert a.label == b.label


def test_the_fixed_batch_is_fixed_and_varied() -> None:
    a, b = parity_batch(32), parity_batch(32)
    assert a.dtype == torch.uint8 and a.shape == (16, 3, 32, 32) and torch.equal(a, b)
    assert len({int(x.float().std() * 1000) for x in a}) > 3  # noise, flat, ramps, stripes
    assert torch.equal(parity_batch(32, n=2), a[:2])


def test_absent_broken_or_mismatched_graphs_fall_back_to_eager_or_are_refused(tmp_path: Path) -> None:
    state = write_state(tmp_path / "a", "ifd_cnn_tiny", 16)
    other, _ = export_state(write_state(tmp_path / "b", "ifd_cnn_tiny", 16, seed=1))  # same shapes, other weights
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a graph")
    cases = {None: "no ONNX graph", broken: "does not run", other: "fails the parity check"}
    for graph, words in cases.items():
        scorer = scorer_of(state)
        attach_runtime(scorer, graph, "auto", version="9")
        assert scorer.runtime == "eager" and words in (scorer.runtime_fallback or "")
        with pytest.raises(RuntimeUnavailable, match=f"version 9: .*{words}"):
            attach_runtime(scorer_of(state), graph, "onnx", version="9")
    eager = scorer_of(state)
    attach_runtime(eager, other, "eager")
    assert eager.runtime == "eager" and eager.runtime_fallback is None


def test_parity_measures_what_it_claims(tmp_path: Path) -> None:
    state = write_state(tmp_path, "ifd_cnn_tiny", 16)
    graph, _ = export_state(state)
    scorer, onnx = scorer_of(state), OnnxForward(graph)

    def shifted(px: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p, z = onnx(px)
        return p + 2 * P_FAKE_TOL, z

    assert check_parity(scorer.eager_forward, onnx, 16).ok
    bad = check_parity(scorer.eager_forward, shifted, 16)
    assert not bad.ok and bad.max_dp == pytest.approx(2 * P_FAKE_TOL, rel=0.05)


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A workspace whose champion v1 was registered with its ONNX graph."""
    from ifd.lifecycle import retrain as rt
    from ifd.lifecycle.review import approve

    ws = fresh_workspace(tmp_path_factory, "runtime")
    lines: list[str] = []
    rt.run_retrain(ws, "task0", tiny_lid(), progress=lines.append)
    approve(ws, "1", "alice", "first")
    return {"ws": ws, "lines": lines}


def test_registration_logs_the_graph_with_the_version_and_serving_uses_it(registered: dict[str, Any]) -> None:
    from ifd.serving.app import create_app
    from ifd.serving.config import ServeConfig
    from ifd.serving.model_source import ModelSource
    from ifd.tracking import model_registry as reg
    from ifd.tracking.runtime_artifact import fetch_onnx

    ws = registered["ws"]
    assert any(line.startswith("[onnx] exported detector.onnx") for line in registered["lines"])
    graph = fetch_onnx(ws, "1", ws.state_dir / "fetched")
    assert graph is not None and graph.read_bytes()[:4] != b""  # downloaded from the version's artifacts
    state = reg.download_state(ws, "1")
    source = ModelSource(ws, poll_s=0.0, runtime="onnx")
    champion = source.champion()
    assert champion.scorer.runtime == "onnx" and champion.scorer.parity_max_dp <= P_FAKE_TOL
    px = parity_batch(champion.scorer.img_size, n=5, seed=3)
    eager = scorer_of(state).score_pixels(px)
    assert np.abs(champion.scorer.score_pixels(px).p_fake - eager.p_fake).max() <= P_FAKE_TOL
    app = create_app(ws, ServeConfig(alias_poll_s=0.0), source)
    try:
        client = TestClient(app)
        png = sorted(ws.batch_dir("task0").glob("img/*.png"))[0].read_bytes()
        assert client.post("/v1/score", files=[("files", ("a.png", png, "image/png"))]).status_code == 200
        assert 'ifd_model_runtime{runtime="onnx",version="1"} 1.0' in client.get("/metrics").text
    finally:
        app.state.batcher.close()
    assert ModelSource(ws, poll_s=0.0, runtime="eager").champion().scorer.runtime == "eager"


def test_a_version_without_a_graph_is_served_eagerly_and_counted(tmp_path_factory: pytest.TempPathFactory) -> None:
    """As a version registered before graphs were exported: its artifact store holds no detector.onnx."""
    from ifd.lifecycle import retrain as rt
    from ifd.lifecycle.review import approve
    from ifd.serving.app import create_app
    from ifd.serving.config import ServeConfig
    from ifd.serving.model_source import ModelSource

    ws = fresh_workspace(tmp_path_factory, "no-graph")
    rt.run_retrain(ws, "task0", tiny_lid(), progress=QUIET)
    approve(ws, "1", "alice", "first")
    graphs = list(ws.state_dir.rglob("detector.onnx"))
    assert graphs
    for graph in graphs:
        graph.unlink()
    source = ModelSource(ws, poll_s=0.0, runtime="auto")
    assert source.champion().scorer.runtime == "eager"
    app = create_app(ws, ServeConfig(alias_poll_s=0.0, batching=False), source)
    client = TestClient(app)
    png = sorted(ws.batch_dir("task0").glob("img/*.png"))[0].read_bytes()
    assert client.post("/v1/score", files=[("files", ("a.png", png, "image/png"))]).status_code == 200
    text = client.get("/metrics").text
    assert 'ifd_runtime_fallbacks_total{reason="absent",version="1"} 1.0' in text
    assert 'ifd_model_runtime{runtime="eager",version="1"} 1.0' in text
    strict = ModelSource(ws, poll_s=0.0, runtime="onnx")
    strict.refresh(force=True)
    assert "1" in strict.skipped and "runtime onnx" in strict.skipped["1"]


def test_a_failed_export_never_blocks_registration_it_is_logged(tmp_path: Path) -> None:
    from ifd.inference.onnx_runtime import ONNX_ARTIFACT, registration_artifacts

    bad = tmp_path / "state.pt"
    bad.write_bytes(b"not a detector state")
    lines: list[str] = []
    assert registration_artifacts(bad, lines.append) == {}
    assert len(lines) == 1 and "\n" not in lines[0] and "served eagerly (" in lines[0]
    good = write_state(tmp_path / "ok", "ifd_cnn_tiny", 16)
    found = registration_artifacts(good, lines.append)
    assert Path(found[ONNX_ARTIFACT]).is_file() and "max |dp_fake|" in lines[-1]
