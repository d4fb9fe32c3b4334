"""`ifd bench`: the strategy registry, every supported Avalanche strategy and our own runners on a tiny
stream, our AF against Avalanche's own forgetting metric, results.json against CONTRACT.md, the
subprocess campaign through the CLI, cost growth and throughput."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from test_train_data import write_tiny_batch

from ifd.bench.spec import RunResult, RunSpec
from ifd.errors import IfdError, UnknownNameError

AVALANCHE = ["naive", "replay", "ewc", "lwf", "der", "gdumb", "agem"]
BUDGET = 4
CONTRACT_NAMES = [
    "lid", "lid-no-ida", "lid-no-iso", "lid-no-dr", "lid-no-lsda", "lid-random-replay",
    "naive", "replay", "ewc", "lwf", "der", "icarl", "gdumb", "agem", "joint",
]


@pytest.fixture(scope="module")
def stream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("stream")
    for t in range(3):
        write_tiny_batch(root / f"t{t}", seed=t)
    return root


def write_flip_batch(folder: Path, seed: int, flip: bool, n_per_class: int = 12, size: int = 16) -> Path:
    """Bright stripes mark the fakes, or (flip) the reals: a stream that a fine-tuned model must forget."""
    (folder / "img").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for label in ("real", "fake"):
        for i in range(n_per_class):
            img = rng.integers(0, 128, (size, size, 3), dtype=np.uint8)
            if (label == "fake") != flip:
                img[:, ::2] = 255
            path = f"img/{label}_{i}.png"
            Image.fromarray(img).save(folder / path)
            split = "train" if i < n_per_class * 2 // 3 else "test"
            rows.append({"path": path, "label": label, "method": "camera" if label == "real" else f"gen{seed}",
                         "split": split, "source_id": f"{label}{i}"})
    pd.DataFrame(rows).to_csv(folder / "manifest.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def flip_stream(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("flip")
    for t, flip in enumerate((False, True, False)):
        write_flip_batch(root / f"t{t}", seed=t, flip=flip)
    return root


def tiny_lid(**overrides: object) -> dict:
    from ifd.continual.config import LIDConfig

    base = {"backbone": "ifd_cnn_tiny", "img_size": 16, "epochs": 1, "batch_size": 8, "step_size": 1,
            "budget_per_task": BUDGET, "replay_per_class_per_task": 2}
    return LIDConfig(**{**base, **overrides}).model_dump(mode="json")


def run(name: str, stream: Path, tmp_path: Path, peer: bool = False, **overrides: object) -> RunResult:
    from ifd.bench.worker import run_one

    spec = RunSpec(strategy=name, seed=0, stream=str(stream), lid=tiny_lid(**overrides), work_dir=str(tmp_path / name),
                   peer_metrics=peer)
    return run_one(spec, progress=lambda _: None)


def assert_lower_triangular(result: RunResult, n: int) -> None:
    assert result.ok, result.error
    assert result.matrix is not None
    for metric in ("auc", "acc"):
        rows = result.matrix[metric]
        assert [len(r) for r in rows] == list(range(1, n + 1))
        assert all(0.0 <= a <= 1.0 for r in rows for a in r)
    assert len(result.time_per_task_s) == n and all(t > 0 for t in result.time_per_task_s)


def test_every_contract_name_is_registered_and_lid_presets_resolve() -> None:
    from ifd.bench.strategies import STRATEGIES, resolve

    for name in [*CONTRACT_NAMES, "finetune"]:
        assert name in STRATEGIES
    assert resolve("lid:official").family == "ours"
    with pytest.raises(UnknownNameError, match="paper"):
        resolve("lid:nope")


def test_an_unknown_strategy_fails_with_the_known_names() -> None:
    from ifd.bench.strategies import parse_names

    with pytest.raises(UnknownNameError) as exc:
        parse_names("lid,sgd")
    assert "'sgd'" in str(exc.value) and "replay" in str(exc.value) and "lid:<preset>" in str(exc.value)
    with pytest.raises(IfdError, match="twice"):
        parse_names("lid,lid")


@pytest.mark.parametrize("name", AVALANCHE)
def test_avalanche_strategy_fills_a_lower_triangular_matrix(name: str, stream: Path, tmp_path: Path) -> None:
    result = run(name, stream, tmp_path)
    assert_lower_triangular(result, 3)
    if name in ("replay", "agem"):  # exactly the budget per experience, like LID
        assert result.replay_samples == 3 * BUDGET
    elif name in ("der", "gdumb"):  # a reservoir of budget * tasks
        assert 0 < result.replay_samples <= 3 * BUDGET
    else:
        assert result.replay_samples == 0
    assert (result.replay_bytes > 0) == (result.replay_samples > 0)
    # scored like LID: raw-margin AUC (the bootstrap's per-image scores reproduce it), calibrated ACC
    from sklearn.metrics import roc_auc_score

    assert result.final_scores is not None
    for auc, s in zip(result.matrix["auc"][-1], result.final_scores, strict=True):
        assert roc_auc_score(s["y"], s["score"]) == pytest.approx(auc, abs=1e-9)


def test_icarl_is_refused_with_its_reason(stream: Path, tmp_path: Path) -> None:
    result = run("icarl", stream, tmp_path)
    assert not result.ok
    assert "class-incremental" in (result.error or "")


@pytest.mark.parametrize("name", ["naive", "replay"])
def test_our_af_equals_avalanches_forgetting_metric(name: str, flip_stream: Path, tmp_path: Path) -> None:
    """Avalanche's StreamForgetting after experience t = mean over i < t of (acc[i][i] - acc[t][i]): our AF
    in its "last" form (ifd.eval.retention.average_forgetting), on the ACC matrix of the same run."""
    from ifd.eval.retention import average_forgetting

    result = run(name, flip_stream, tmp_path, peer=True, epochs=3, lr=0.01)
    assert_lower_triangular(result, 3)
    acc = result.notes["matrix_acc_uncalibrated"]  # Avalanche's accuracy is argmax; ours is calibrated
    assert result.peer is not None and len(result.peer) == 3
    for t, peer in enumerate(result.peer):
        assert peer["accuracy"] == pytest.approx(acc[t], abs=1e-6)
        ours = average_forgetting(acc[: t + 1])
        theirs = peer["stream_forgetting"] if t > 0 else 0.0  # Avalanche: nothing to forget after one experience
        assert ours == pytest.approx(theirs, abs=1e-6)
        for i, f in peer["forgetting"].items():
            assert acc[int(i)][int(i)] - acc[t][int(i)] == pytest.approx(f, abs=1e-6)
    assert average_forgetting(acc) > 0  # the flipped task made it forget: the check is not vacuous


@pytest.mark.parametrize("name", ["lid", "finetune", "joint"])
def test_our_loop_strategies_fill_a_lower_triangular_matrix(name: str, stream: Path, tmp_path: Path) -> None:
    result = run(name, stream, tmp_path)
    assert_lower_triangular(result, 3)
    if name == "lid":
        assert result.replay_samples == 3 * BUDGET and result.replay_bytes > 0
    if name == "joint":
        assert result.replay_samples == 3 * 12  # every train image of the three tasks (4 of 16 held out as val)
    assert result.final_scores is not None and [len(s["y"]) for s in result.final_scores] == [8, 8, 8]
    assert not any((tmp_path / name).rglob("*.pt")), "state files are removed after the run"


def _result(seed: int, auc: list[list[float]], times: list[float]) -> RunResult:
    return RunResult(strategy="s", seed=seed, matrix={"task_names": ["a", "b"], "auc": auc, "acc": auc},
                     time_per_task_s=times, eval_time_per_task_s=times, peak_rss_mb=100.0 + seed, replay_bytes=10)


def test_aggregate_over_seeds_by_hand() -> None:
    from ifd.bench.aggregate import build_results
    from ifd.bench.schema import validate_results

    runs = {
        "s": [_result(0, [[0.9], [0.7, 0.8]], [1.0, 2.0]), _result(1, [[1.0], [0.9, 1.0]], [3.0, 4.0])],
        "broken": [RunResult(strategy="broken", seed=0, error="IfdError: nope")],
    }
    res = build_results("stream", [0, 1], runs, {"backbone": "x"})
    e = res["strategies"]["s"]
    assert e["AA"]["mean"] == pytest.approx((0.75 + 0.95) / 2)
    assert e["AA"]["std"] == pytest.approx(np.std([0.75, 0.95], ddof=1))
    assert e["AF"]["mean"] == pytest.approx((0.2 + 0.1) / 2)
    assert e["AF_chaudhry"]["mean"] == pytest.approx(0.15)
    assert e["BWT"]["mean"] == pytest.approx(-0.15)
    assert e["matrix_auc"][0] == pytest.approx([0.95]) and e["matrix_auc"][1] == pytest.approx([0.8, 0.9])
    assert e["time_per_task_s"] == [2.0, 3.0]
    assert e["peak_rss_mb"] == 101.0 and e["final_auc"] == pytest.approx({"a": 0.8, "b": 0.9})
    assert res["failed"] == {"broken": "IfdError: nope"}
    validate_results(res)


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"AA": {"mean": 93.2, "std": 1.0}}, "fraction"),
        ({"matrix_auc": [[0.9, 0.8]]}, "row 0"),
        ({"replay_bytes": -1}, "replay_bytes"),
    ],
)
def test_the_schema_refuses_what_contract_md_forbids(bad: dict, match: str) -> None:
    from ifd.bench.schema import validate_results

    entry = {"AA": {"mean": 0.9, "std": 0.0}, "AF": {"mean": 0.1, "std": 0.0}, "BWT": {"mean": -0.1, "std": 0.0},
             "matrix_auc": [[0.9]], "time_per_task_s": [1.0], "peak_rss_mb": 1.0, "replay_bytes": 0}
    validate_results({"stream": "s", "seeds": [0], "strategies": {"x": entry}})
    with pytest.raises(IfdError, match=match):
        validate_results({"stream": "s", "seeds": [0], "strategies": {"x": {**entry, **bad}}})
    with pytest.raises(IfdError, match="strategies"):
        validate_results({"stream": "s", "seeds": [0]})


def test_seeds_are_a_count_or_a_list() -> None:
    from ifd.commands.bench import parse_seeds

    assert parse_seeds("3") == [0, 1, 2] and parse_seeds("4,7") == [4, 7]
    for bad in ("0", "a", "1,1", "-1,2"):
        with pytest.raises(IfdError):
            parse_seeds(bad)


@pytest.fixture(scope="module")
def bench_out(stream: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """One small campaign through the CLI: each (strategy, seed) in its own worker process."""
    import contextlib
    import io

    from ifd.cli import main

    out = tmp_path_factory.mktemp("bench") / "out"
    argv = ["bench", str(stream), "--strategies", "finetune,naive,icarl", "--seeds", "1", "--out", str(out),
            "--epochs", "1", "--budget", str(BUDGET), "--backbone", "ifd_cnn_tiny", "--img-size", "16",
            "--batch-size", "8", "--threads", "1", "--json", "--workspace", str(out.parent)]
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert main(argv) == 0
    return out, json.loads(buf.getvalue())


def test_bench_cli_writes_contract_results_md_and_plots(bench_out: tuple[Path, dict]) -> None:
    from ifd.bench.schema import validate_results

    out, summary = bench_out
    results = validate_results(out / "results.json")
    assert results.stream and results.seeds == [0]
    assert set(results.strategies) == {"finetune", "naive"}
    data = json.loads((out / "results.json").read_text())
    assert "class-incremental" in data["failed"]["icarl"]
    for name, e in data["strategies"].items():
        assert e["peak_rss_mb"] >= e["rss_after_imports_mb"] > 0
        assert (out / "heatmaps" / f"{name}.png").is_file()
        assert (out / "runs" / f"{name}__seed0" / "log.txt").is_file()
    assert (out / "forgetting_curves.png").is_file() and (out / "aa_curves.png").is_file()
    md = (out / "results.md").read_text()
    assert "| finetune |" in md and "| naive |" in md and "AF = mean over tasks" in md and "icarl" in md
    assert summary["failed"].keys() == {"icarl"}


def test_reuse_keeps_finished_runs_and_jobs_run_the_rest_side_by_side(bench_out: tuple[Path, dict]) -> None:
    from ifd.bench.runner import run_bench
    from ifd.continual.config import LIDConfig

    out, _ = bench_out
    spec = json.loads((out / "runs" / "naive__seed0" / "spec.json").read_text())
    before = (out / "runs" / "naive__seed0" / "result.json").read_text()
    lines: list[str] = []
    results = run_bench(Path(spec["stream"]), ["finetune", "naive"], [0], out, LIDConfig.model_validate(spec["lid"]),
                        threads=1, progress=lines.append, jobs=2, reuse=True)
    assert sum("kept from an earlier run" in line for line in lines) == 2
    assert (out / "runs" / "naive__seed0" / "result.json").read_text() == before
    assert results["settings"]["jobs"] == 2 and set(results["strategies"]) == {"finetune", "naive"}


def test_cost_growth_table_and_plot(bench_out: tuple[Path, dict], tmp_path: Path) -> None:
    from ifd.bench.cost import write_cost

    out, _ = bench_out
    results = json.loads((out / "results.json").read_text())
    files = write_cost(results, tmp_path, "note")
    md = Path(files["md"]).read_text()
    assert "| finetune |" in md and "task 3" in md and "x |" in md
    assert Path(files["png"]).is_file()
    rows = json.loads(Path(files["json"]).read_text())["rows"]
    assert {r["strategy"] for r in rows} == {"finetune", "naive"}


def test_throughput_measures_train_and_inference_rates() -> None:
    from ifd.bench.throughput import measure

    r = measure("ifd_cnn_tiny", img_size=16, batch_size=8, iters=2, warmup=1)
    assert r["train_img_s"] > 0 and r["infer_img_s"] > 0 and r["torch_threads"] == 1
    if not torch.cuda.is_available():
        with pytest.raises(IfdError, match="CUDA"):
            measure("ifd_cnn_tiny", img_size=16, batch_size=8, device="cuda")


def test_tuned_lr_and_coefficients_reach_the_avalanche_strategy(stream: Path, tmp_path: Path) -> None:
    from ifd.bench.worker import run_one

    spec = RunSpec(strategy="ewc", seed=0, stream=str(stream), lid=tiny_lid(), work_dir=str(tmp_path / "ewc"),
                   baseline_params={"ewc": {"lr": 0.0123, "ewc_lambda": 7.0}})
    result = run_one(spec, progress=lambda _: None)
    assert result.ok, result.error
    assert result.notes["hyperparameters"] == {"lr": 0.0123, "ewc_lambda": 7.0, "mode": "separate"}
    spec = RunSpec(strategy="ewc", seed=0, stream=str(stream), lid=tiny_lid(), work_dir=str(tmp_path / "ewc-val"),
                   eval_split="val")
    on_val = run_one(spec, progress=lambda _: None)
    assert [len(s["y"]) for s in on_val.final_scores] == [4, 4, 4]  # the val hold-out, not the 8 test rows


def test_a_campaign_runs_in_pieces_and_aggregates_every_run_in_its_folder(bench_out: tuple[Path, dict]) -> None:
    from ifd.bench.runner import run_bench
    from ifd.continual.config import LIDConfig

    out, _ = bench_out
    spec = json.loads((out / "runs" / "naive__seed0" / "spec.json").read_text())
    base = LIDConfig.model_validate(spec["lid"])
    lines: list[str] = []
    results = run_bench(Path(spec["stream"]), ["naive"], [1], out, base, threads=1, progress=lines.append)
    assert results["seeds"] == [0, 1]
    assert set(results["strategies"]) == {"finetune", "naive"}  # finetune comes from the earlier piece
    assert results["strategies"]["naive"]["seeds"] == [0, 1] and results["strategies"]["finetune"]["seeds"] == [0]
    assert "AA_ci95" in results["strategies"]["naive"]
    other = base.model_copy(update={"epochs": 2})
    with pytest.raises(IfdError, match="other lid"):
        run_bench(Path(spec["stream"]), ["naive"], [0], out, other, threads=1, progress=lines.append)


def test_ablation_variants_inherit_lids_tuned_values_and_still_switch_their_part_off(tmp_path: Path) -> None:
    from ifd.bench.lid_runner import lid_config
    from ifd.bench.runner import own_params
    from ifd.bench.spec import RunContext
    from ifd.continual.config import LIDConfig

    tuned = {"lid": {"lr": 0.0031, "weight_iso": 2.5}, "naive": {"lr": 0.01}}
    assert own_params("lid-no-iso", tuned) == {"lid-no-iso": tuned["lid"]}
    assert own_params("naive", tuned) == {"naive": {"lr": 0.01}} and own_params("ewc", tuned) == {}
    ctx = RunContext(tasks=[], base=LIDConfig.model_validate(tiny_lid()), seed=3, work_dir=tmp_path,
                     baseline_params=own_params("lid-no-iso", tuned))
    cfg = lid_config("lid-no-iso", ctx)
    assert cfg.lr == 0.0031 and cfg.weight_iso == 0.0 and cfg.seed == 3


def test_bench_cli_selects_on_val_and_fresh_reruns(stream: Path, tmp_path: Path) -> None:
    import contextlib
    import io

    from ifd.cli import main

    out = tmp_path / "val"
    argv = ["bench", str(stream), "--strategies", "naive", "--seeds", "1", "--out", str(out), "--split", "val",
            "--epochs", "1", "--budget", str(BUDGET), "--backbone", "ifd_cnn_tiny", "--img-size", "16",
            "--batch-size", "8", "--threads", "1", "--json", "--workspace", str(tmp_path)]
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(argv) == 0
    data = json.loads((out / "results.json").read_text())
    assert data["settings"]["eval_split"] == "val"
    assert "**Measured on the val split**" in (out / "results.md").read_text()
    first = (out / "runs" / "naive__seed0" / "result.json").stat().st_mtime_ns
    with contextlib.redirect_stdout(io.StringIO()):
        assert main([*argv, "--fresh"]) == 0
    assert (out / "runs" / "naive__seed0" / "result.json").stat().st_mtime_ns != first  # rerun, not kept


def test_open_set_runs_keep_every_unknown_score_and_count_the_knn_bank(stream: Path, tmp_path: Path) -> None:
    from ifd.bench.worker import run_one

    spec = RunSpec(strategy="lid", seed=0, stream=str(stream), lid=tiny_lid(), work_dir=str(tmp_path / "lid"),
                   open_set=True)
    result = run_one(spec, progress=lambda _: None)
    assert result.ok, result.error
    reports = result.notes["open_set"]
    assert [r.get("unseen") for r in reports] == [["t1"], ["t2"], None]  # after task t, task t+1 is the unseen one
    for rep in reports[:-1]:
        assert {"centroid", "mahalanobis", "energy"} <= set(rep["unknown_auc_by_method"])  # and knn@k
        assert all(0.0 <= a <= 1.0 for a in rep["unknown_auc_val_by_method"].values())
    bank = result.notes["unknown_index_bytes"]
    assert bank > 0  # the default score (kNN) keeps calibration features: part of the memory budget
    plain = run("lid", stream, tmp_path / "plain")
    assert "open_set" not in plain.notes
    assert result.replay_bytes == plain.replay_bytes  # same seed, same store and bank: the flag only adds reports


def test_unknown_summary_means_over_seeds_by_hand() -> None:
    from ifd.bench.aggregate import build_results
    from ifd.bench.report_md import results_markdown

    def rep(after: str, unseen: str, knn: float, energy: float) -> dict:
        by = {"knn@1": knn, "energy": energy}
        return {"after": after, "unseen": [unseen], "unknown_auc_by_method": by, "unknown_auc_val_by_method": by,
                "unknown_fake_auc_by_method": by, "unknown_fake_auc_val_by_method": by}

    runs = [RunResult(strategy="lid", seed=s, matrix={"task_names": ["a", "b"], "auc": [[0.9], [0.8, 0.9]],
                                                      "acc": [[0.9], [0.8, 0.9]]},
                      time_per_task_s=[1.0, 1.0], eval_time_per_task_s=[1.0, 1.0],
                      notes={"open_set": [rep("a", "b", knn, 0.5)]}) for s, knn in ((0, 0.8), (1, 0.6))]
    res = build_results("stream", [0, 1], {"lid": runs}, {"backbone": "x"})
    summary = res["strategies"]["lid"]["unknown"]
    assert summary["steps"][0]["unseen"] == ["b"] and summary["seeds"] == 2
    assert summary["steps"][0]["auc"]["knn@1"]["mean"] == pytest.approx(0.7)
    assert summary["steps"][0]["auc"]["knn@1"]["std"] == pytest.approx(np.std([0.8, 0.6], ddof=1))
    assert summary["mean"]["auc"]["energy"] == {"mean": 0.5, "std": 0.0}
    assert "open_set" not in res["strategies"]["lid"]["notes"]  # reports live in `unknown`, not copied per seed
    md = results_markdown(res, {})
    assert "## Unknown-generator AUC" in md and "| b | 0.500 ± 0.000 (0.500) | 0.700 ± 0.141 (0.700) |" in md


def test_bench_cli_open_set_writes_the_unknown_table(stream: Path, tmp_path: Path) -> None:
    import contextlib
    import io

    from ifd.cli import main

    out = tmp_path / "open"
    argv = ["bench", str(stream), "--strategies", "lid", "--seeds", "1", "--out", str(out), "--tasks", "2",
            "--open-set", "--epochs", "1", "--budget", str(BUDGET), "--backbone", "ifd_cnn_tiny", "--img-size", "16",
            "--batch-size", "8", "--threads", "1", "--json", "--workspace", str(tmp_path)]
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(argv) == 0
    entry = json.loads((out / "results.json").read_text())["strategies"]["lid"]
    assert [s["unseen"] for s in entry["unknown"]["steps"]] == [["t1"]]
    assert "### lid (1 seed(s))" in (out / "results.md").read_text()
