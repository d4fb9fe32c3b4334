"""`joint-lid` (issue 12): LID's own architecture and losses trained on the union of the seen tasks, a real
upper bound; `joint-ce` keeps the single-head version; a strategy above its upper bound is flagged."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_train_data import write_tiny_batch

from ifd.bench.spec import RunResult, RunSpec
from ifd.data.tasks import tasks_from_stream


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("stream")
    for t in range(3):
        write_tiny_batch(root / f"t{t}", seed=t)
    return root


def tiny_lid() -> dict:
    from ifd.continual.config import LIDConfig

    return LIDConfig(backbone="ifd_cnn_tiny", img_size=16, epochs=2, batch_size=8, step_size=1, budget_per_task=4,
                     replay_per_class_per_task=2).model_dump(mode="json")


def test_the_union_keeps_each_sample_on_its_own_task_head(stream: Path, tmp_path: Path) -> None:
    from ifd.bench.joint_lid import JOINT_DELTAS, UnionDataModule, learn_joint
    from ifd.continual.config import LIDConfig
    from ifd.data.image_dataset import ImageCache
    from ifd.train.val_split import with_val

    tasks = [with_val(t) for t in tasks_from_stream(stream)]
    cfg = LIDConfig.model_validate({**tiny_lid(), **JOINT_DELTAS})
    data = UnionDataModule(tasks, cfg, ImageCache(), seed=0)
    batches = list(data.train_dataloader())
    seen = torch.cat([b["task"] for b in batches])
    assert sorted(seen.tolist()) == sorted(k for k, t in enumerate(tasks) for _ in range(len(t.split("train"))))
    assert not torch.cat([b["is_replay"] for b in batches]).any()
    model, learn_s = learn_joint(tasks, cfg, tmp_path / "j", ImageCache())
    assert len(model.heads) == 3 and learn_s > 0  # one head per task, as LID


def test_each_joint_lid_step_continues_from_the_previous_one(stream: Path, tmp_path: Path) -> None:
    """Cumulative, not from scratch: step t starts from step t-1's weights (so it gets every update LID's
    chain gets, on all the data), with one new head."""
    from ifd.bench.joint_lid import JOINT_DELTAS, learn_joint
    from ifd.continual.config import LIDConfig
    from ifd.data.image_dataset import ImageCache
    from ifd.train.val_split import with_val

    tasks = [with_val(t) for t in tasks_from_stream(stream)]
    cfg = LIDConfig.model_validate({**tiny_lid(), **JOINT_DELTAS})
    first, _ = learn_joint(tasks[:1], cfg, tmp_path / "a", ImageCache())
    after_first = {k: v.detach().clone() for k, v in first.state_dict().items()}
    second, _ = learn_joint(tasks[:2], cfg, tmp_path / "b", ImageCache(), previous=first)
    assert second is first and len(second.heads) == 2
    from ifd.train.state import build_detector

    def distance(a: dict, b: dict) -> float:
        keys = [k for k in a if k.startswith("backbone.") and a[k].is_floating_point()]
        return float(sum((a[k].cpu() - b[k].cpu()).pow(2).sum() for k in keys))

    torch.manual_seed(int(cfg.seed) + 1)
    scratch = build_detector(cfg, n_heads=2).state_dict()
    # trained on from step 0's backbone, not re-initialised: much nearer step 0 than a fresh start is
    assert distance(second.state_dict(), after_first) < 0.5 * distance(scratch, after_first)


@pytest.mark.parametrize("name", ["joint-lid", "joint-ce", "joint"])
def test_joint_strategies_fill_the_matrix_with_raw_scores(name: str, stream: Path, tmp_path: Path) -> None:
    from ifd.bench.worker import run_one

    spec = RunSpec(strategy=name, seed=0, stream=str(stream), lid=tiny_lid(), work_dir=str(tmp_path / name))
    result = run_one(spec, progress=lambda _: None)
    assert result.ok, result.error
    assert [len(r) for r in result.matrix["auc"]] == [1, 2, 3]
    assert result.replay_samples == 3 * 12  # every train image (16 per task, 4 held out as val)
    assert result.final_scores is not None and len(result.final_scores) == 3
    assert [len(s["y"]) for s in result.final_scores] == [8, 8, 8]
    if name == "joint-lid":
        assert result.notes["upper_bound_of"] == "lid"


def _run(name: str, seed: int, aa: float) -> RunResult:
    return RunResult(strategy=name, seed=seed, matrix={"task_names": ["a", "b"], "auc": [[aa], [aa, aa]],
                                                       "acc": [[aa], [aa, aa]]},
                     time_per_task_s=[1.0, 1.0], eval_time_per_task_s=[1.0, 1.0], peak_rss_mb=1.0)


def test_a_method_above_its_upper_bound_is_flagged_not_reported_as_a_win() -> None:
    from ifd.bench.aggregate import build_results
    from ifd.bench.report_md import results_markdown

    runs = {"lid": [_run("lid", s, 0.95 + 0.001 * s) for s in range(3)],
            "joint-lid": [_run("joint-lid", s, 0.90 + 0.001 * s) for s in range(3)]}
    res = build_results("s", [0, 1, 2], runs, {})
    assert [v["strategy"] for v in res["bound_violations"]] == ["lid"]
    assert res["bound_violations"][0]["bound"] == "joint-lid"
    md = results_markdown(res, {})
    assert "above its upper bound" in md and "bug to explain" in md
    runs["joint-lid"] = [_run("joint-lid", s, 0.99) for s in range(3)]
    assert build_results("s", [0, 1, 2], runs, {})["bound_violations"] == []
