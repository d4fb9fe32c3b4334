"""Fail fast: what can be checked about a command line before any server, flow or heavy import starts.

`check(args)` runs in `ifd.cli.main` right after parsing: the workspace is an initialised workspace for
the commands that act on one, `--params` names a file, and each command's own arguments make sense (a
batch path that exists in the shape its `--format` needs, a batch name that is allowed and ingested,
positive counts and intervals), and the YAML it will read (params.yaml, the gate and monitoring policies)
validates. Each failure is exit 2 with a one-line reason (`UsageError`, or the YAML's own ConfigError
naming the file and the field). Only cheap, local facts are checked here (files, names, numbers, typed
YAML); everything else stays where it is done.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from ifd.errors import ConfigError

Check = Callable[[argparse.Namespace], None]

# Commands that read or write an initialised workspace (a DVC project with data/catalog.json, data.dvc),
# unless given a stream folder of their own (`--stream`).
WORKSPACE_COMMANDS = frozenset(
    {"ingest", "catalog", "retrain", "approve", "reject", "registry", "rollback", "revert-champion", "worker", "serve",
     "monitor"}
)
WORKSPACE_UNLESS_STREAM = frozenset({"train", "tune", "evaluate"})


class UsageError(ConfigError):
    """A command line that cannot work: wrong argument, missing file, not a workspace (exit 2)."""


def check(args: argparse.Namespace) -> None:
    """Raise UsageError for the first problem found in `args`; return quietly otherwise."""
    params = getattr(args, "params", None)
    if params and not Path(params).is_file():
        raise UsageError(f"--params {params}: no such file")
    command = getattr(args, "command", None)
    if command == "serve" and getattr(args, "hash_key", False):
        return  # `ifd serve --hash-key` only hashes a key from stdin: no workspace, no port
    if command == "worker" and getattr(args, "action", None) == "start":
        return _positive("limit")(args)  # a pool worker serves any workspace's deployments: none needed here
    if command in WORKSPACE_COMMANDS or (command in WORKSPACE_UNLESS_STREAM and not getattr(args, "stream", None)):
        require_workspace(args)
    for check_one in CHECKS.get(command or "", ()):
        check_one(args)


def require_workspace(args: argparse.Namespace) -> None:
    from ifd.workspace import Workspace

    ws = Workspace.at(getattr(args, "workspace", None))
    if not ws.root.is_dir():
        raise UsageError(f"{ws.root} does not exist; create it and run `ifd init` there (or pass --workspace DIR)")
    if not ws.is_initialised():
        journal = getattr(ws, "journal_path", None)
        if journal is not None and journal.exists():
            ws.require()  # an ingest killed mid-commit: require() repairs it, then checks again
            return
        missing = [n for n, ok in ((".dvc/", (ws.root / ".dvc").is_dir()), ("data/catalog.json", ws.catalog_path.is_file()),
                                   ("data.dvc", ws.data_dvc.is_file())) if not ok]
        raise UsageError(f"{ws.root} is not an ifd workspace (no {', '.join(missing)}); run `ifd init` there first")


def _params(args: argparse.Namespace) -> None:
    """params.yaml (or --params) is valid: a wrong key or value is named now, not after a server started."""
    from ifd.config import load_config
    from ifd.workspace import Workspace

    load_config(Path(args.params) if getattr(args, "params", None) else Workspace.at(getattr(args, "workspace", None)).params_path)


def _gate_policy(args: argparse.Namespace) -> None:
    """`ifd retrain`: the gate policy is valid before the training it judges (it is read after it)."""
    from ifd.workspace import Workspace
    from registry.policy import load_policy

    load_policy(Workspace.at(getattr(args, "workspace", None)).root, Path(args.policy) if args.policy else None)


def _monitor_policy(args: argparse.Namespace) -> None:
    from ifd.workspace import Workspace
    from monitoring.policy import load_policy

    policy = getattr(args, "policy", None)
    load_policy(Workspace.at(getattr(args, "workspace", None)).root, Path(policy) if policy else None)


def _positive(name: str, minimum: float = 0.0, strict: bool = True) -> Check:
    """The option `name` (attribute name) is None or > minimum (>= with strict=False)."""

    def run(args: argparse.Namespace) -> None:
        value = getattr(args, name, None)
        if value is None:
            return
        if value < minimum or (strict and value == minimum):
            flag = "--" + name.replace("_", "-")
            raise UsageError(f"{flag} {value}: must be {'>' if strict else '>='} {minimum:g}")

    return run


def _existing(name: str, kind: str = "file") -> Check:
    def run(args: argparse.Namespace) -> None:
        value = getattr(args, name, None)
        if value is None:
            return
        path = Path(value)
        ok = path.is_file() if kind == "file" else path.is_dir()
        if not ok:
            raise UsageError(f"--{name.replace('_', '-')} {value}: no such {'folder' if kind == 'dir' else 'file'}")

    return run


def _stream_folder(args: argparse.Namespace) -> None:
    stream = getattr(args, "stream", None)
    if stream is not None and not Path(stream).is_dir():
        raise UsageError(f"{stream}: not a folder; give a stream folder (`ifd synth OUT` writes one)")


def _ingest_source(args: argparse.Namespace) -> None:
    from ifd.cli import default_batch_name
    from ifd.data.ingest import check_name
    from ifd.errors import IfdError

    src = Path(args.batch)
    if not src.exists():
        raise UsageError(f"{src}: no such file or folder")
    fmt = args.format
    if fmt == "deepfakebench" and not src.is_file():
        raise UsageError(f"{src}: --format deepfakebench takes a DeepfakeBench dataset JSON file, not a folder")
    if fmt in ("folders", "video"):
        missing = [d for d in ("real", "fake") if not (src / d).is_dir()]
        if not src.is_dir() or missing:
            raise UsageError(f"{src}: --format {fmt} needs a folder with real/ and fake/ subfolders")
    if fmt == "manifest":
        manifest = src if src.is_file() else src / "manifest.csv"
        if manifest.name != "manifest.csv" or not manifest.is_file():
            hint = "" if (src / "real").is_dir() else " (a batch without one needs another --format)"
            raise UsageError(f"{src}: no manifest.csv{hint}; folders with real/ and fake/ take --format folders")
    try:
        check_name(args.name or default_batch_name(src))
    except IfdError as exc:
        raise UsageError(f"{exc}{'' if args.name else ' (pass --name NAME)'}") from None


def _ingested_batch(args: argparse.Namespace) -> None:
    """`ifd retrain NAME`: NAME is in the workspace's catalogue."""
    from ifd.data.catalog import load_catalog
    from ifd.errors import IfdError
    from ifd.workspace import Workspace

    try:
        names = load_catalog(Workspace.at(getattr(args, "workspace", None)).catalog_path).names()
    except (IfdError, OSError, ValueError):
        return  # an unreadable catalogue is reported by the command itself, with its own reason
    if args.name not in names:
        known = ", ".join(str(n) for n in names) or "none yet (run `ifd ingest BATCH` first)"
        raise UsageError(f"no ingested batch named {args.name!r}; ingested: {known}")


def _seeds(args: argparse.Namespace) -> None:
    from ifd.commands.bench import parse_seeds
    from ifd.errors import IfdError

    try:
        parse_seeds(args.seeds)
    except IfdError as exc:
        raise UsageError(str(exc)) from None


def _model_file(args: argparse.Namespace) -> None:
    """`ifd evaluate MODEL`: a state file that is named must exist (aliases and versions are the registry's)."""
    if args.model.endswith(".pt") and not Path(args.model).is_file():
        raise UsageError(f"{args.model}: no such state file")


def _port(args: argparse.Namespace) -> None:
    """`ifd serve`: the port is valid and free now, not after the champion has been loaded."""
    import socket

    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port {args.port}: must be between 0 and 65535")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(args.host, args.port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise UsageError(f"--host {args.host}: not an address of this machine ({exc.strerror})") from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            raise UsageError(f"--port {args.port}: cannot listen on {args.host}:{args.port} ({exc.strerror}); "
                             "is another `ifd serve` running there?") from None


_SHARED_COUNTS = (_positive("epochs"), _positive("budget", strict=False), _positive("tasks"), _positive("img_size"),
                  _positive("batch_size"), _positive("lr"), _positive("replay_per_batch", strict=False))

CHECKS: dict[str, tuple[Check, ...]] = {
    "synth": (_positive("tasks"), _positive("per_class"), _positive("size"), _params),
    "ingest": (_ingest_source, _params),
    "train": (_stream_folder, _params),
    "demo": (_params,),
    "retrain": (_positive("wait", strict=False), _existing("policy"), _params, _gate_policy, _ingested_batch),
    "evaluate": (_stream_folder, _model_file),
    "worker": (_positive("wait", strict=False), _params),
    "serve": (_port, _positive("poll", strict=False), _monitor_policy),
    "monitor": (_existing("policy"), _positive("every"), _monitor_policy),
    "bench": (_stream_folder, _seeds, _positive("jobs"), _positive("threads"), _positive("timeout"), _existing("baseline_params"),
              *_SHARED_COUNTS, _params),
    "tune": (_stream_folder, _positive("n_trials", strict=False), _positive("timeout"), _existing("space"), *_SHARED_COUNTS, _params),
}
