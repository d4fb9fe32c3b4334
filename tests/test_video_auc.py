"""Video-level AUC beside frame-level AUC: hand-computed averaging, grouping by (dataset, label, video),
and the video level in the a[t][i] matrices of our loop and of an Avalanche baseline, in results.json
and in the model card."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from test_train_data import write_tiny_batch

from ifd.data.tasks import TaskData, tasks_from_stream
from ifd.errors import IfdError
from ifd.eval.matrix import ResultMatrix
from ifd.eval.video import matrix_row, mean_video_rows, video_auc, video_summary

# Real video A: frames 0.9, 0.1 (mean 0.5); real B: 0.2; fake C: 0.3, 0.5 (0.4); fake D: 0.6, 0.8 (0.7).
Y = np.array([0, 0, 0, 1, 1, 1, 1])
P = np.array([0.9, 0.1, 0.2, 0.3, 0.5, 0.6, 0.8])
IDS = ["t/real/A", "t/real/A", "t/real/B", "t/fake/C", "t/fake/C", "t/fake/D", "t/fake/D"]


def test_frames_of_one_video_are_averaged_by_hand() -> None:
    # frames: fake > real in 8 of the 12 (real, fake) pairs; videos: 0.4 > 0.2, 0.7 > 0.5, 0.7 > 0.2: 3 of 4
    row = matrix_row([(Y, P, IDS)])
    assert row.auc == [pytest.approx(8 / 12)]
    assert row.auc_video == [pytest.approx(3 / 4)]
    assert row.acc == [pytest.approx(5 / 7)]  # 0.9 (real) and 0.3 (fake) fall on the wrong side of 0.5


def test_videos_are_grouped_by_dataset_label_and_video_not_by_source_alone() -> None:
    rows = pd.DataFrame({
        "label": ["real", "real", "fake", "fake", "real", "fake"],
        "source_id": ["v0", "v0", "v0", "v0", "v1", "v1"],
    })
    task = TaskData(name="FF", root=Path("."), frame=rows.assign(y=rows["label"].map({"real": 0, "fake": 1})))
    ids = task.video_ids(rows)
    assert ids == ["FF/real/v0", "FF/real/v0", "FF/fake/v0", "FF/fake/v0", "FF/real/v1", "FF/fake/v1"]
    assert TaskData(name="CDF", root=Path("."), frame=task.frame).video_ids(rows)[0] == "CDF/real/v0"
    y = task.frame["y"].to_numpy()
    p = np.array([0.1, 0.3, 0.2, 0.4, 0.5, 0.45])
    # real v0 -> 0.2, fake v0 -> 0.3, real v1 -> 0.5, fake v1 -> 0.45: fake above real in 2 of 4 pairs
    assert video_auc(y, p, ids) == pytest.approx(0.5)
    # grouped by source alone, v0 would mix a real and a fake video into one score: not what we compute
    assert video_auc(y, p, ids) != video_auc(y, p, [f"FF/{s}" for s in rows["source_id"]])


def test_no_shared_video_means_frame_level_only() -> None:
    assert video_auc(Y, P, [f"t/{i}" for i in range(len(Y))]) is None
    with pytest.raises(ValueError, match="video ids"):
        video_auc(Y, P, IDS[:3])


def test_matrix_keeps_video_rows_and_reads_old_dicts() -> None:
    m = ResultMatrix()
    m.add_row("a", [0.9], [0.8], [0.95])
    m.add_row("b", [0.8, 0.7], [0.7, 0.6], [0.85, None])
    assert m.has_video and ResultMatrix.from_dict(m.to_dict()) == m
    with pytest.raises(IfdError, match="video-AUC"):
        m.add_row("c", [0.8, 0.7, 0.6], [0.7, 0.6, 0.5], [0.9])
    old = ResultMatrix.from_dict({"task_names": ["a"], "auc": [[0.9]], "acc": [[0.8]]})
    assert old.video_rows() == [[None]] and not old.has_video
    assert video_summary(m) == {"final_auc_video": {"a": 0.85, "b": None}, "AA_video": 0.85, "video_tasks": 1}
    other = ResultMatrix()
    other.add_row("a", [0.9], [0.8], [0.75])
    other.add_row("b", [0.8, 0.7], [0.7, 0.6], [0.65, 0.6])
    assert mean_video_rows([m.to_dict(), other.to_dict()]) == [[pytest.approx(0.85)], [pytest.approx(0.75), None]]
    from ifd.lifecycle.record import matrix_table  # the MLflow table `matrix_auc_video.json`

    assert matrix_table(m, "auc_video") == [{"after": "a", "a": 0.95, "b": None}, {"after": "b", "a": 0.85, "b": None}]


def write_video_batch(folder: Path, seed: int, videos: int = 4, frames: int = 3, size: int = 16) -> Path:
    """`videos` real and `videos` fake clips of `frames` frames; a real and a fake clip share each source
    id (as DeepfakeBench's original and its manipulation can); fakes carry stripes; split per clip."""
    (folder / "img").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for label in ("real", "fake"):
        for v in range(videos):
            base = rng.integers(0, 200, (size, size, 3), dtype=np.uint8)
            for f in range(frames):
                img = np.clip(base.astype(int) + rng.integers(-20, 20, base.shape), 0, 255).astype(np.uint8)
                if label == "fake":
                    img[:, :: 2 + seed % 2] = 250
                path = f"img/{label}_{v}_{f}.png"
                Image.fromarray(img).save(folder / path)
                split = "train" if v < videos // 2 else "test"
                rows.append({"path": path, "label": label, "method": "camera" if label == "real" else f"gen{seed}",
                             "split": split, "source_id": f"clip{v}"})
    pd.DataFrame(rows).to_csv(folder / "manifest.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def mixed_stream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Task a: one image per source and label (frame level only); task b: clips of 3 frames."""
    root = tmp_path_factory.mktemp("videos")
    write_tiny_batch(root / "a_images", seed=0)
    write_video_batch(root / "b_videos", seed=1)
    return root


def _lid_config() -> object:
    from ifd.continual.config import LIDConfig

    return LIDConfig(backbone="ifd_cnn_tiny", img_size=16, epochs=1, batch_size=8, step_size=1,
                     budget_per_task=4, replay_per_class_per_task=2)


def _check_video_matrix(matrix: dict) -> None:
    video = matrix["auc_video"]
    assert [len(r) for r in video] == [1, 2]
    assert video[0][0] is None and video[1][0] is None  # task a: no two frames share a video id
    assert video[1][1] is not None and 0.0 <= video[1][1] <= 1.0


def test_our_loop_fills_video_rows_and_the_model_card_shows_them(mixed_stream: Path, tmp_path: Path) -> None:
    from ifd.eval.report import retention_summary
    from ifd.lifecycle.gate import evaluate_gate
    from ifd.lifecycle.model_card import model_card
    from ifd.train.loop import train_sequence
    from registry.policy import GatePolicy

    state = train_sequence(tasks_from_stream(mixed_stream), _lid_config(), tmp_path / "out", progress=lambda _: None)
    _check_video_matrix(state.matrix.to_dict())
    summary = retention_summary(state.matrix)
    gate = evaluate_gate(summary["final_auc"], "b_videos", None, GatePolicy())
    card = model_card(state, summary, gate, "d0", None)
    assert "| task | video AUC now | video AUC right after learning it |" in card
    assert f"| b_videos | {state.matrix.auc_video[1][1]:.4f} | {state.matrix.auc_video[1][1]:.4f} |" in card
    assert "| a_images | - | - |" in card


def test_an_avalanche_baseline_reports_video_auc_into_results_json(mixed_stream: Path, tmp_path: Path) -> None:
    from ifd.bench.aggregate import build_results
    from ifd.bench.schema import validate_results
    from ifd.bench.spec import RunSpec
    from ifd.bench.worker import run_one

    runs = []
    for seed in (0, 1):
        spec = RunSpec(strategy="naive", seed=seed, stream=str(mixed_stream), work_dir=str(tmp_path / f"s{seed}"),
                       lid=_lid_config().model_dump(mode="json"))
        result = run_one(spec, progress=lambda _: None)
        assert result.ok, result.error
        assert result.matrix is not None
        _check_video_matrix(result.matrix)
        runs.append(result)
    results = build_results(str(mixed_stream), [0, 1], {"naive": runs}, {})
    entry = validate_results(results).strategies["naive"]
    expected = np.mean([r.matrix["auc_video"][1][1] for r in runs if r.matrix])
    assert entry.matrix_auc_video == [[None], [None, pytest.approx(expected)]]
    assert results["strategies"]["naive"]["AA_video"]["mean"] == pytest.approx(expected)


def test_results_json_refuses_a_video_matrix_of_another_shape() -> None:
    from ifd.bench.schema import validate_results

    entry = {"AA": {"mean": 0.9, "std": 0.0}, "AF": {"mean": 0.0, "std": 0.0}, "BWT": {"mean": 0.0, "std": 0.0},
             "matrix_auc": [[0.9], [0.8, 0.9]], "time_per_task_s": [1.0, 1.0], "peak_rss_mb": 1.0, "replay_bytes": 0}
    validate_results({"stream": "s", "seeds": [0], "strategies": {"x": {**entry, "matrix_auc_video": [[None], [0.7, None]]}}})
    with pytest.raises(IfdError, match="matrix_auc_video row 1"):
        validate_results({"stream": "s", "seeds": [0], "strategies": {"x": {**entry, "matrix_auc_video": [[None], [0.7]]}}})
    with pytest.raises(IfdError, match="one row per task"):
        validate_results({"stream": "s", "seeds": [0], "strategies": {"x": {**entry, "matrix_auc_video": [[None]]}}})
