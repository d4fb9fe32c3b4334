"""The only module that imports Avalanche (0.6; imports happen inside functions, they cost ~8 s).

Avalanche (Lomonaco et al., CVPR-W 2021) runs its real strategies; this module only feeds them and
reads them out, in a binary domain-incremental setting (every task: real vs fake, labels 0/1):
- each task's train split is one experience (a tensor dataset of `to_model_input` images, task label 0:
  one head; at test time the detector is not told the generator, as in deployment);
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

from ifd.bench.spec import RunContext, RunResult
from ifd.bench.tensors import build_classifier, evaluate_tensors, pixel_bytes, split_tensors
from ifd.errors import ConfigError, IfdError
from ifd.registry_utils import Registry

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


def _datasets(ctx: RunContext) -> tuple[list[Any], list[Any], list[tuple[torch.Tensor, torch.Tensor]]]:
    from avalanche.benchmarks.utils import _make_taskaware_tensor_classification_dataset as tensor_dataset

    from ifd.data.image_dataset import ImageCache

    cache, train, test, tests = ImageCache(), [], [], []
    for task in ctx.tasks:
        x, y = split_tensors(task, "train", ctx.base.img_size, cache)
        train.append(tensor_dataset(x, y, targets=y.tolist(), task_labels=0))
        xt, yt = split_tensors(task, "test", ctx.base.img_size, cache)
        test.append(tensor_dataset(xt, yt, targets=yt.tolist(), task_labels=0))
        tests.append((xt, yt))
    return train, test, tests


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


def _common(model: torch.nn.Module, ctx: RunContext, device: torch.device) -> dict[str, Any]:
    from avalanche.training.plugins import LRSchedulerPlugin

    cfg = ctx.base
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
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


def run_avalanche(name: str, ctx: RunContext) -> RunResult:
    """Train Avalanche strategy `name` over the tasks; one matrix row per experience."""
    from ifd.eval.matrix import ResultMatrix

    baseline = BASELINES.get(name)
    if baseline.unsupported:
        raise IfdError(f"{name}: {baseline.unsupported}")
    cfg = ctx.base
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    sizes = Sizes(int(cfg.budget_per_task), len(ctx.tasks), int(cfg.batch_size))
    with quiet():
        from avalanche.training.determinism.rng_manager import RNGManager

        RNGManager.set_random_seeds(ctx.seed)
        train, test, tests = _datasets(ctx)
        bench = _benchmark(train, test)
        common = _common(build_classifier(cfg).to(device), ctx, device)
        strategy = baseline.build(common, dict(baseline_params(ctx.baseline_params).get(name) or {}), sizes)
        result = RunResult(strategy=name, seed=ctx.seed, peer=[] if ctx.peer_metrics else None)
        matrix = ResultMatrix()
        for t, (exp, task) in enumerate(zip(bench.train_stream, ctx.tasks, strict=True)):
            started = time.perf_counter()
            strategy.train(exp, reset_optimizer_state=True)
            learned = time.perf_counter()
            aucs, accs = evaluate_tensors(strategy.model, tests[: t + 1])
            matrix.add_row(task.name, aucs, accs)
            if result.peer is not None:
                strategy.eval(bench.test_stream[: t + 1])
                result.peer.append(peer_row(strategy.evaluator.get_last_metrics(), t))
            result.time_per_task_s.append(round(learned - started, 3))
            result.eval_time_per_task_s.append(round(time.perf_counter() - learned, 3))
            ctx.progress(f"[bench] {name} experience {t} {task.name!r}: AUC " + " ".join(f"{a:.3f}" for a in aucs))
    result.matrix = matrix.to_dict()
    result.replay_samples, result.replay_bytes = memory_footprint(strategy)
    result.replay_pixel_bytes = pixel_bytes(result.replay_samples, cfg.img_size)
    result.notes = {"memory": baseline.memory, "hyperparameters": baseline_params(ctx.baseline_params).get(name) or {}}
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
