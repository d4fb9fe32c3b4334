"""The only module that imports Avalanche (0.6; imports happen inside functions, they cost ~8 s).

Avalanche (Lomonaco et al., CVPR-W 2021) runs its real strategies; this module only feeds them and
reads them out, in a binary domain-incremental setting (every task: real vs fake, labels 0/1):
- each task's train split is one experience: a lazy torch dataset (`ifd.bench.lazy_split.LazySplit`:
  paths and labels; each image decoded when a batch asks for it, through the uint8 cache of the
  config's `image_cache_mb`, LRU-bounded as in our loop; 0 decodes every read) under
  Avalanche's classification-dataset wrapper, task label 0 (one head; at test time the detector is not
  told the generator, as in deployment). No split is ever held in RAM as float32; replay buffers keep
  indices into these datasets, so they stay lazy too;
- the model is the shared backbone + `Linear(D, 2)`, Adam(lr, weight_decay) + StepLR per experience (the
  optimiser state is reset at every experience, as our loop builds a new optimiser per task);
- after each experience, every seen task's test split is scored with p(fake) = softmax(logits)[:, 1]
  into the same `ResultMatrix` LID fills; with `peer_metrics` Avalanche's own EvaluationPlugin
  (accuracy and forgetting) runs on the same model too, so our numbers can be checked against it.

Replay budget in samples (LID keeps `budget_per_task` per task; B = that, T = number of tasks):
`replay` keeps exactly B per experience at every step (ReplayPlugin with a fixed-share
ExperienceBalancedBuffer of T * B); `agem` B patterns per experience; `der` (DER++: alpha 0.1,
beta 0.5) and `gdumb` a class-balanced reservoir of T * B samples, so their final memory equals LID's
and is larger before the last task (Avalanche sizes those buffers only in total).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from ifd.bench.baseline_calibration import calibrated_row
from ifd.bench.lazy_split import LazySplit
from ifd.bench.spec import RunContext, RunResult
from ifd.bench.tensors import build_classifier, pixel_bytes
from ifd.errors import ConfigError, IfdError
from ifd.progress import steps
from ifd.registry_utils import Registry
from ifd.train.val_split import with_val

PARAMS_FILE = Path(__file__).with_name("baselines.yaml")


@dataclass(frozen=True)
class Sizes:
    """Replay sizes: `per_task` samples per task (LID's budget), `total` = per_task * n_tasks."""

    per_task: int
    n_tasks: int
    batch_size: int

    @property
    def total(self) -> int:
        return self.per_task * self.n_tasks


Builder = Callable[[dict[str, Any], dict[str, Any], Sizes], Any]
"""builder(common strategy kwargs, this baseline's hyperparameters, sizes) -> an Avalanche strategy."""


@dataclass(frozen=True)
class Baseline:
    build: Builder
    summary: str
    memory: str
    unsupported: str | None = None


BASELINES: Registry[Baseline] = Registry("Avalanche baseline")


def _needs_budget(sizes: Sizes, name: str) -> None:
    if sizes.per_task <= 0:
        raise IfdError(f"{name} keeps a replay memory: give a budget per task > 0 (--budget)")


def _naive(common: dict[str, Any], hp: dict[str, Any], sizes: Sizes) -> Any:
    from avalanche.training.supervised import Naive

    return Naive(**common, **hp)


def _replay(common: dict[str, Any], hp: dict[str, Any], sizes: Sizes) -> Any:
    from avalanche.training.plugins import ReplayPlugin
    from avalanche.training.storage_policy import ExperienceBalancedBuffer
    from avalanche.training.supervised import Naive

    _needs_budget(sizes, "replay")
    policy = ExperienceBalancedBuffer(sizes.total, adaptive_size=False, num_experiences=sizes.n_tasks)
    plugin = ReplayPlugin(sizes.total, storage_policy=policy, **hp)
    return Naive(**{**common, "plugins": [*common["plugins"], plugin]})


def _ewc(common: dict[str, Any], hp: dict[str, Any], sizes: Sizes) -> Any:
    from avalanche.training.supervised import EWC

    return EWC(**common, **hp)


def _lwf(common: dict[str, Any], hp: dict[str, Any], sizes: Sizes) -> Any:
    from avalanche.training.supervised import LwF

    return LwF(**common, **hp)


def _der(common: dict[str, Any], hp: dict[str, Any], sizes: Sizes) -> Any:
    from avalanche.training.supervised import DER

    _needs_budget(sizes, "der")
    return DER(**common, mem_size=sizes.total, batch_size_mem=sizes.batch_size, **hp)


def _gdumb(common: dict[str, Any], hp: dict[str, Any], sizes: Sizes) -> Any:
    from avalanche.training.supervised import GDumb

    _needs_budget(sizes, "gdumb")
    return GDumb(**common, mem_size=sizes.total, **hp)


def _agem(common: dict[str, Any], hp: dict[str, Any], sizes: Sizes) -> Any:
    from avalanche.training.supervised import AGEM

    _needs_budget(sizes, "agem")
    hp = {"sample_size": sizes.batch_size, **hp}
    return AGEM(**common, patterns_per_exp=sizes.per_task, **hp)


def _icarl(common: dict[str, Any], hp: dict[str, Any], sizes: Sizes) -> Any:
    raise IfdError(f"icarl: {ICARL_REASON}")


ICARL_REASON = (
    "not meaningful in this binary domain-incremental setting: iCaRL is class-incremental; it needs new "
    "classes in every experience (its benchmark's n_classes_per_exp / classes_order), classifies by the "
    "nearest mean of each class's exemplars (with the same two classes in every task, the class means of "
    "the newest task overwrite the others) and distils old-class sigmoid outputs that are the current "
    "classes here; use replay, der, gdumb or agem for replay baselines"
)

BASELINES.add("naive", Baseline(_naive, "Avalanche Naive: fine-tuning", "none"))
BASELINES.add("replay", Baseline(_replay, "Avalanche Replay (Naive + ReplayPlugin)", "B per experience, fixed share"))
BASELINES.add("ewc", Baseline(_ewc, "Avalanche EWC (Kirkpatrick et al., 2017)", "none (Fisher importances)"))
BASELINES.add("lwf", Baseline(_lwf, "Avalanche LwF (Li & Hoiem, 2017)", "none (previous model)"))
BASELINES.add("der", Baseline(_der, "Avalanche DER++ (Buzzega et al., 2020)", "T*B class-balanced reservoir + logits"))
BASELINES.add("gdumb", Baseline(_gdumb, "Avalanche GDumb (Prabhu et al., 2020)", "T*B class-balanced reservoir"))
BASELINES.add("agem", Baseline(_agem, "Avalanche A-GEM (Chaudhry et al., 2019)", "B per experience"))
BASELINES.add("icarl", Baseline(_icarl, "Avalanche iCaRL (Rebuffi et al., 2017)", "-", ICARL_REASON))


def baseline_params(overrides: dict[str, dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """Hyperparameters of each baseline: baselines.yaml, then `overrides` per strategy."""
    params = yaml.safe_load(PARAMS_FILE.read_text()) or {}
    for name, values in (overrides or {}).items():
        BASELINES.get(name)
        if not isinstance(values, dict):
            raise ConfigError(f"baseline params for {name!r}: expected a mapping, got {values!r}")
        params[name] = {**params.get(name, {}), **values}
    return params


@contextmanager
def quiet() -> Iterator[None]:
    """Silence warnings raised outside ifd (Avalanche's "no loggers", its deprecations, jaxopt's notice).

    Avalanche's `@deprecated` calls `warnings.simplefilter("once")` itself, which outranks any filter set
    here; so warnings are recorded instead of shown, and only those of ifd's own files are re-issued."""
    ours = str(Path(__file__).resolve().parents[1])
    with warnings.catch_warnings(record=True) as caught:
        warnings.filterwarnings("ignore", module=r"(?!ifd\b)")
        yield
    for w in caught:
        if str(Path(w.filename).resolve()).startswith(ours):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def preload() -> None:
    """Import the parts of Avalanche the runs use (quietly)."""
    with quiet():
        import avalanche.benchmarks.scenarios.dataset_scenario  # noqa: F401
        import avalanche.training.supervised  # noqa: F401


@dataclass
class Splits:
    """Each task's train and test split as torch datasets of (x, y) with `targets` (test: `video_ids` too)."""

    train: list[Any]
    test: list[Any]


def lazy_splits(ctx: RunContext) -> Splits:
    """Every task's train and test split as a `LazySplit`: paths and labels only, images read on demand."""
    from ifd.bench.lazy_split import LazySplit
    from ifd.data.image_dataset import ImageCache

    bound = int(getattr(ctx.base, "image_cache_mb", 0)) * 1024**2  # the config's decoded-image cache, as LID's
    cache = ImageCache(max_bytes=bound) if bound > 0 else None
    size = int(ctx.base.img_size)
    return Splits(
        train=[LazySplit(task, "train", size, cache) for task in ctx.tasks],
        test=[LazySplit(task, ctx.eval_split, size, cache) for task in ctx.tasks],  # "val" while tuning
    )


def _wrap(data: Any) -> Any:
    """Avalanche's classification dataset over a torch dataset (task label 0: one head); no copy of it."""
    from avalanche.benchmarks.utils import _make_taskaware_classification_dataset as classification_dataset

    return classification_dataset(data, targets=list(data.targets), task_labels=0)


def _benchmark(train: list[Any], test: list[Any]) -> Any:
    from avalanche.benchmarks.scenarios.dataset_scenario import benchmark_from_datasets
    from avalanche.benchmarks.scenarios.supervised import with_classes_timeline
    from avalanche.benchmarks.scenarios.task_aware import with_task_labels

    return with_task_labels(with_classes_timeline(benchmark_from_datasets(train=train, test=test)))


def _evaluator(peer_metrics: bool) -> Any:
    from avalanche.evaluation.metrics import accuracy_metrics, forgetting_metrics
    from avalanche.training.plugins import EvaluationPlugin

    metrics = [*accuracy_metrics(experience=True), *forgetting_metrics(experience=True, stream=True)] if peer_metrics else []
    return EvaluationPlugin(*metrics, loggers=[])


def _common(model: torch.nn.Module, ctx: RunContext, device: torch.device, lr: float | None = None) -> dict[str, Any]:
    from avalanche.training.plugins import LRSchedulerPlugin

    cfg = ctx.base
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr if lr is None else float(lr), weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.gamma_lr)
    return {
        "model": model,
        "optimizer": optimizer,
        "criterion": torch.nn.CrossEntropyLoss(),
        "train_mb_size": int(cfg.batch_size),
        "train_epochs": int(cfg.epochs),
        "eval_mb_size": 64,
        "device": device,
        "plugins": [LRSchedulerPlugin(scheduler, reset_scheduler=True, reset_lr=True, step_granularity="epoch")],
        "evaluator": _evaluator(ctx.peer_metrics),
        "eval_every": -1,
    }


def run_avalanche(name: str, ctx: RunContext, load: Callable[[RunContext], Splits] = lazy_splits) -> RunResult:
    """Train Avalanche strategy `name` over the tasks; one matrix row per experience. `load` gives the
    splits (`lazy_splits`; benchmarks/avalanche_rss.py passes the old eager loader to compare memory)."""
    from ifd.eval.matrix import ResultMatrix

    baseline = BASELINES.get(name)
    if baseline.unsupported:
        raise IfdError(f"{name}: {baseline.unsupported}")
    cfg = ctx.base
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    sizes = Sizes(int(cfg.budget_per_task), len(ctx.tasks), int(cfg.batch_size))
    workers = int(getattr(cfg, "num_workers", 0) or 0)
    with quiet():
        from avalanche.training.determinism.rng_manager import RNGManager

        RNGManager.set_random_seeds(ctx.seed)
        splits = load(ctx)
        bench = _benchmark([_wrap(d) for d in splits.train], [_wrap(d) for d in splits.test])
        hp = dict(baseline_params(ctx.baseline_params).get(name) or {})
        common = _common(build_classifier(cfg).to(device), ctx, device, lr=hp.pop("lr", None))  # tuned lr, if any
        strategy = baseline.build(common, hp, sizes)
        result = RunResult(strategy=name, seed=ctx.seed, peer=[] if ctx.peer_metrics else None)
        matrix, uncalibrated = ResultMatrix(), []
        bar = steps(ctx.progress, len(ctx.tasks), "tasks")  # [progress] lines: `ifd bench` shows them as a bar
        for t, (exp, task) in enumerate(zip(bench.train_stream, ctx.tasks, strict=True)):
            bar.start(f"task {t} {task.name!r}")
            started = time.perf_counter()
            strategy.train(exp, reset_optimizer_state=True, num_workers=workers)
            learned = time.perf_counter()
            newest_val = LazySplit(with_val(task), "val", int(cfg.img_size), getattr(splits.test[t], "cache", None))
            row, result.final_scores, cal = calibrated_row(strategy, newest_val, splits.test[: t + 1], workers)
            uncalibrated.append(cal["acc_uncalibrated"])
            matrix.add(task.name, row)
            aucs = row.auc
            if result.peer is not None:
                strategy.eval(bench.test_stream[: t + 1])
                result.peer.append(peer_row(strategy.evaluator.get_last_metrics(), t))
            result.time_per_task_s.append(round(learned - started, 3))
            result.eval_time_per_task_s.append(round(time.perf_counter() - learned, 3))
            ctx.progress(f"[bench] {name} experience {t} {task.name!r}: AUC " + " ".join(f"{a:.3f}" for a in aucs))
            bar.advance()
        bar.close()
    result.matrix = matrix.to_dict()
    result.replay_samples, result.replay_bytes = memory_footprint(strategy)
    result.replay_pixel_bytes = pixel_bytes(result.replay_samples, cfg.img_size)
    result.notes = {"memory": baseline.memory, "hyperparameters": baseline_params(ctx.baseline_params).get(name) or {},
                    "calibration": "own replay memory + the newest task's val split", "matrix_acc_uncalibrated": uncalibrated}
    return result


def peer_row(metrics: dict[str, Any], step: int) -> dict[str, Any]:
    """Avalanche's own numbers after experience `step`: per-experience accuracy and forgetting, and the
    stream forgetting (mean over the experiences trained before, of first accuracy - current accuracy)."""
    acc, forget = {}, {}
    for key, value in metrics.items():
        exp = key.rsplit("/Exp", 1)
        if key.startswith("Top1_Acc_Exp/eval_phase/test_stream") and len(exp) == 2:
            acc[int(exp[1])] = float(value)
        elif key.startswith("ExperienceForgetting/eval_phase/test_stream") and len(exp) == 2:
            forget[int(exp[1])] = float(value)
    stream = metrics.get("StreamForgetting/eval_phase/test_stream")
    return {
        "step": step,
        "accuracy": [acc[i] for i in sorted(acc)],
        "forgetting": {str(i): forget[i] for i in sorted(forget)},
        "stream_forgetting": None if stream is None else float(stream),
    }


def memory_footprint(strategy: Any) -> tuple[int, int]:
    """(samples, bytes) in the strategy's replay memory: ReplayPlugin / GDumb / DER storage policies and
    A-GEM's per-experience buffers; bytes of every tensor of a stored sample (inputs, labels, logits)."""
    buffers: list[Any] = []
    for holder in (strategy, *strategy.plugins):
        policy = getattr(holder, "storage_policy", None)
        if policy is not None:
            buffers.append(policy.buffer)
        if isinstance(getattr(holder, "buffers", None), list):
            buffers.extend(holder.buffers)
    samples = sum(len(b) for b in buffers)
    nbytes = sum(len(b) * _item_bytes(b[0]) for b in buffers if len(b))
    return int(samples), int(nbytes)


def _item_bytes(item: Any) -> int:
    parts = item if isinstance(item, list | tuple) else [item]
    return sum(p.numel() * p.element_size() if isinstance(p, torch.Tensor) else 8 for p in parts)
