"""The retrain flow's steps as plain functions over paths, names and dicts (flows/retrain.py runs them
as Prefect tasks; `run_retrain` runs them in order without Prefect).

champion (registry alias, or none) -> learn task NAME on top of it (replay of the champion's tasks;
evaluation of every task it knows plus NAME on test, for the report) -> gate against the champion (both
scored on every task's val split: the gate decides on val, never on test) -> log the run, and register
a `challenger` version only if the gate passed.

Pinned data: the retrain reads one DVC data version, hard-linked into the job folder at its start
(ifd/lifecycle/data_pin.py); an ingest meanwhile cannot change what it trains on, and the candidate
records that version.

Crash-resumable: each job has its own folder `.ifd/retrain/<champion>-<name>-<key>/` (key: the batch's
content digest and the config), where learn_task keeps epoch checkpoints and the finished state, the
data pin, the client token and run id of the tracking step and, once recorded, `result.json`. Running
the same retrain again resumes from the last epoch, reuses the pin, the run and the version, or returns
the recorded result. Fault points (`IFD_FAULT_AT`, ifd/faults.py): `retrain.pinned`, `retrain.learned`,
`retrain.recorded`, and those of ifd/tracking/retrain_run.py.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from ifd.errors import IfdError
from ifd.faults import maybe_fault
from ifd.workspace import Workspace

Progress = Callable[[str], None]
RESULT_FILE = "result.json"
RUN_ID_FILE = "run_id"
_ARCH_KEYS = ("backbone", "img_size", "features_only")


def say(msg: str) -> None:
    """Progress on stderr (stdout is for --json results); a flow with log_prints logs it instead."""
    print(msg, file=sys.stderr, flush=True)


class RetrainBusy(IfdError):
    """Another retrain holds this workspace."""

    exit_code = 4


@contextmanager
def retrain_lock(ws: Workspace, wait_s: float = 0.0) -> Iterator[None]:
    """One retrain at a time per workspace (a file lock: one machine); a second caller waits `wait_s`
    seconds, then RetrainBusy. The retrain flow takes it inside the global `retrain` slot
    (ifd/lifecycle/retrain_slot.py), which orders retrains across workers; `run_retrain` takes it alone."""
    from ifd.locks import WorkspaceBusy, workspace_lock

    with ExitStack() as stack:
        try:
            stack.enter_context(workspace_lock(ws, "retrain", timeout=wait_s))
        except WorkspaceBusy:
            raise RetrainBusy(
                f"another retrain is running in {ws.root} (lock {ws.locks_dir / 'retrain.lock'}); "
                "wait for it to finish, or pass --wait SECONDS to queue behind it"
            ) from None
        yield


def workspace_lid(ws: Workspace, params: str | None = None) -> dict[str, Any]:
    """The detector config of the workspace's params.yaml (or `params`), as a JSON-friendly dict."""
    from ifd.config import load_config

    return load_config(Path(params) if params else ws.params_path).lid().model_dump(mode="json")


def fetch_champion(ws: Workspace, progress: Progress = say) -> dict[str, Any]:
    """{"version", "state", "tasks"} of the registry's champion (state downloaded once), or {} if none."""
    from ifd.tracking.model_registry import CHAMPION, download_state, version_by_alias

    found = version_by_alias(ws, CHAMPION)
    if found is None:
        progress("[retrain] no champion yet: the first version starts from a fresh detector")
        return {}
    path = download_state(ws, found.version)
    progress(f"[retrain] champion: version {found.version} ({', '.join(found.tasks)})")
    return {"version": found.version, "state": str(path), "tasks": found.tasks}


def job_dir(ws: Workspace, name: str, champion: dict[str, Any], lid: dict[str, Any], digest: str | None = None) -> Path:
    """The folder of one retrain job: same champion, batch content and config -> same folder."""
    from ifd.data.catalog import load_catalog

    digest = digest if digest is not None else load_catalog(ws.catalog_path).get(name).digest
    key = hashlib.sha256(json.dumps([digest, lid], sort_keys=True, default=str).encode()).hexdigest()[:10]
    base = f"v{champion['version']}" if champion else "fresh"
    return ws.state_dir / "retrain" / f"{base}-{name}-{key}"


def recorded(job: Path) -> dict[str, Any] | None:
    """The result of a job that already finished its tracking step."""
    path = Path(job) / RESULT_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def learn_candidate(
    ws: Workspace,
    name: str,
    champion: dict[str, Any],
    lid: dict[str, Any],
    progress: Progress = say,
    fresh: bool = False,
) -> dict[str, Any]:
    """Learn task `name` on top of the champion's state; {"job", "state", "tasks"} of the candidate.

    `fresh` forgets an earlier attempt of the same job (checkpoints, run, result) and starts over.
    """
    import shutil

    from ifd.continual.config import LIDConfig
    from ifd.data.tasks import tasks_from_dirs
    from ifd.lifecycle import data_pin
    from ifd.train.loop import STATE_FILE, learn_task
    from ifd.train.state import IncrementalState

    cfg = LIDConfig.model_validate(lid)
    pin = data_pin.read_pin(ws)  # what the candidate learns from, whatever is ingested meanwhile
    catalog = data_pin.pinned_catalog(ws, pin)
    if name not in catalog.names():
        raise IfdError(f"no ingested batch named {name!r}; ingested: {', '.join(catalog.names()) or 'none'}")
    base = IncrementalState.load(Path(champion["state"])) if champion else None
    names = _previous(base, catalog.names(), name, champion)
    if base is not None:
        _check_architecture(base.cfg.model_dump(), cfg.model_dump(), champion["version"])
    job = job_dir(ws, name, champion, lid, catalog.get(name).digest)
    if fresh and job.exists():
        progress(f"[retrain] starting over: removing {job}")
        shutil.rmtree(job)
    done = job / STATE_FILE
    wanted = [*names, name]
    if (earlier_result := recorded(job)) is not None and done.is_file():
        data_pin.release(job)  # a job killed between recording and releasing its snapshot
        return {"job": str(job), "state": str(done), "tasks": wanted, "data_version": earlier_result.get("data_version")}
    earlier = data_pin.job_pin(job)
    snap = data_pin.materialise(ws, job, pin, wanted)
    version = earlier["data_version"] if earlier else pin["data_version"]
    if earlier and version != pin["data_version"]:
        progress(f"[retrain] resuming on the data version this job pinned, {version} (data.dvc is now {pin['data_version']})")
    else:
        progress(f"[retrain] data version {version} pinned in {snap}")
    maybe_fault("retrain.pinned")
    tasks = {t.name: t for t in tasks_from_dirs([snap / "batches" / n for n in wanted])}
    previous = [tasks[n] for n in names]
    if done.is_file() and IncrementalState.load(done).task_names == wanted:
        progress(f"[retrain] {name}: already learned in {job}; reusing it")
    else:
        progress(f"[retrain] learning {name!r} on top of {'version ' + champion['version'] if champion else 'a fresh detector'} in {job}")
        learn_task(base, tasks[name], cfg, job, previous, resume=True, progress=progress)
    maybe_fault("retrain.learned")
    return {"job": str(job), "state": str(done), "tasks": wanted, "data_version": version, "data_root": str(snap)}


def _previous(base: Any, known: list[str], name: str, champion: dict[str, Any]) -> list[str]:
    """The champion's tasks, in order, all of them in the pinned catalogue `known`."""
    if base is None:
        return []
    if name in base.task_names:
        raise IfdError(
            f"the champion (version {champion['version']}) already learned {name!r}; "
            "a retrain learns a new batch (ingest it under a new name)"
        )
    missing = [n for n in base.task_names if n not in known]
    if missing:
        raise IfdError(f"the champion learned batch(es) this workspace does not hold: {', '.join(missing)}")
    return list(base.task_names)


def _check_architecture(old: dict[str, Any], new: dict[str, Any], version: str) -> None:
    clash = [k for k in _ARCH_KEYS if old.get(k) != new.get(k)]
    if clash:
        pairs = ", ".join(f"{k} {old.get(k)!r} -> {new.get(k)!r}" for k in clash)
        raise IfdError(
            f"the config changes {pairs} against the champion (version {version}); an incremental retrain "
            "keeps the architecture: set them back in params.yaml, or start a new line with `ifd train`"
        )


def gate_candidate(
    ws: Workspace, candidate: dict[str, Any], champion: dict[str, Any], policy_file: str | None = None, progress: Progress = say
) -> dict[str, Any]:
    """The gate report (as a dict) of the candidate against the champion, both scored on every task's val split.

    The gate never reads a test row (ifd/lifecycle/gate_scores.py); the candidate's test matrix is logged
    beside it for the report. A job that already recorded its result returns the gate it recorded."""
    from ifd.lifecycle.gate import evaluate_gate
    from ifd.lifecycle.gate_scores import GATE_SPLIT, gate_scores
    from registry.policy import load_policy

    policy = load_policy(ws.root, Path(policy_file) if policy_file else None)
    if (done := recorded(Path(candidate["job"]))) is not None:
        return dict(done["gate"])
    cand_auc, champ_auc = gate_scores(ws, candidate, champion)
    progress(
        f"[retrain] gate on the {GATE_SPLIT} split: candidate " + " ".join(f"{n} {a:.3f}" for n, a in cand_auc.items())
        + ("; champion " + " ".join(f"{n} {a:.3f}" for n, a in champ_auc.items()) if champ_auc else "")
    )
    report = evaluate_gate(cand_auc, candidate["tasks"][-1], champ_auc, policy, champion.get("version"), split=GATE_SPLIT)
    return report.to_dict()


def record_candidate(
    ws: Workspace, candidate: dict[str, Any], champion: dict[str, Any], gate: dict[str, Any], progress: Progress = say
) -> dict[str, Any]:
    """Log the run; register + alias `challenger` when the gate passed. Writes the job's result.json."""
    from ifd.lifecycle.record import build_record
    from ifd.tracking.retrain_run import log_retrain

    job = Path(candidate["job"])
    done = recorded(job)
    if done is not None:
        progress(f"[retrain] already recorded as MLflow run {done['run_id']} (version {done['version'] or 'none'}); --fresh redoes it")
        return done
    rec = build_record(ws, candidate, champion, gate)
    result = log_retrain(ws, rec, run_id_file=job / RUN_ID_FILE, log=progress)
    result.update(
        job=str(job),
        task=candidate["tasks"][-1],
        tasks=candidate["tasks"],
        champion_version=champion.get("version"),
        gate=gate,
        metrics={k: rec.metrics[k] for k in ("AA", "AF", "BWT")},
        plots={p.stem: str(p) for p in sorted(Path(rec.files_dir).glob("*.png"))},
    )
    result["data_version"] = rec.data_version
    tmp = job / (RESULT_FILE + ".tmp")
    tmp.write_text(json.dumps(result, indent=1, default=str) + "\n")
    tmp.replace(job / RESULT_FILE)
    maybe_fault("retrain.recorded")
    from ifd.lifecycle.data_pin import release

    release(job)
    return result


def result_text(result: dict[str, Any]) -> str:
    """A few lines for the terminal."""
    from ifd.lifecycle.gate import GateReport

    report = GateReport.from_dict(result["gate"])
    m = result["metrics"]
    lines = [f"retrain of {result['task']!r} on top of {'version ' + result['champion_version'] if result['champion_version'] else 'a fresh detector'}"]
    lines.append(f"AA {m['AA']:.3f}   AF {m['AF']:.3f}   BWT {m['BWT'] + 0.0:+.3f}   (MLflow run {result['run_id']})")
    lines.append(report.text())
    if result.get("version"):
        lines.append(f"registered {result['model_uri']} as challenger; review it: `ifd approve {result['version']} --reviewer NAME --note TEXT`")
    else:
        lines.append("no version registered (the gate refused the candidate)")
    return "\n".join(lines)


def run_retrain(
    ws: Workspace,
    name: str,
    lid: dict[str, Any],
    policy_file: str | None = None,
    wait_s: float = 0.0,
    progress: Progress = say,
    fresh: bool = False,
) -> dict[str, Any]:
    """The whole retrain without Prefect, under the workspace's retrain lock and one retry budget."""
    from ifd.tracking.retry import retry_budget

    with retrain_lock(ws, wait_s), retry_budget():
        champion = fetch_champion(ws, progress)
        candidate = learn_candidate(ws, name, champion, lid, progress, fresh=fresh)
        gate = gate_candidate(ws, candidate, champion, policy_file, progress)
        return record_candidate(ws, candidate, champion, gate, progress)
