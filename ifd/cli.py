"""The `ifd` command line: one entry point, one small handler per command, heavy imports inside handlers.

Every command fails with a non-zero exit and a one-line reason (`ifd: error: ...`); `--json` prints a
machine-readable result on stdout while progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from importlib import import_module
from pathlib import Path

from ifd.commands import COMMAND_MODULES
from ifd.commands.common import config as _config
from ifd.commands.common import emit as _emit
from ifd.commands.common import progress as _progress
from ifd.commands.common import workspace as _workspace
from ifd.errors import BatchRefused, IfdError


def cmd_init(args: argparse.Namespace) -> None:
    from ifd.data.dvc_remote import default_remote, parse_options
    from ifd.redact import redact_url
    from ifd.workspace_init import init_workspace

    ws = init_workspace(_workspace(args), args.remote, parse_options(args.remote_option))
    name, url = default_remote(ws) or ("", "")
    _emit(args, {"workspace": str(ws.root), "remote": name, "remote_url": redact_url(url)},
          f"initialised workspace {ws.root} (DVC remote {name}: {redact_url(url)})")


def cmd_synth(args: argparse.Namespace) -> None:
    from ifd.synth.stream import write_stream

    cfg = _config(args).synth
    updates = {k: v for k, v in {"tasks": args.tasks, "per_class": args.per_class, "size": args.size, "seed": args.seed}.items() if v is not None}
    if args.families:
        updates["families"] = _synth_families(args.families, updates)
    cfg = cfg.model_copy(update=updates)
    _progress(f"writing {cfg.tasks} synthetic batches to {args.out} ...")
    paths = write_stream(Path(args.out), cfg)
    _emit(args, {"batches": [str(p) for p in paths]}, "\n".join(str(p) for p in paths))


def _synth_families(spec: str, updates: dict) -> list[str]:
    """`--families a,b` or a set name (`widened`, `lowfreq`, `default`); without --tasks, one task per family."""
    from ifd.synth.families import expand_families

    families = expand_families([n.strip() for n in spec.split(",") if n.strip()])
    updates.setdefault("tasks", len(families))
    return families


def default_batch_name(src: Path) -> str:
    """The batch folder's name (a JSON file's stem), with characters a batch name cannot hold replaced by '_'."""
    import re

    src = src.resolve()
    base = src.stem if src.is_file() else src.name
    return re.sub(r"[^A-Za-z0-9._-]", "_", base).lstrip("._-")[:64] or "batch"


def cmd_ingest(args: argparse.Namespace) -> None:
    from ifd.prefect_env import prefect_environment

    cfg = _config(args).ingest
    name = args.name or default_batch_name(Path(args.batch))
    _progress(f"ingesting {args.batch} as {name!r} (format {args.format}) ...")
    with prefect_environment():
        from flows.ingest import ingest_flow

        result = ingest_flow(
            src=str(args.batch), name=name, root=str(_workspace(args).root), fmt=args.format,
            replace=args.replace, cfg=cfg.model_dump(),
        )
    counts = ", ".join(f"{s}: {sum(c.values())}" for s, c in result["counts"].items())
    _emit(args, result, f"ingested {name}: {result['n_rows']} rows ({counts}); data version {result['data_version']}")


def cmd_catalog(args: argparse.Namespace) -> None:
    from ifd.data.catalog import load_catalog
    from ifd.data.dvc_store import data_version

    ws = _workspace(args).require()
    catalog = load_catalog(ws.catalog_path)
    rows = [{"name": b.name, "methods": b.methods, "rows": b.n_rows, "ingested_at": b.ingested_at} for b in catalog.batches]
    lines = [f"data version {data_version(ws)}"] + [
        f"{r['name']:<24} {r['rows']:>7} rows  {','.join(r['methods']):<30} {r['ingested_at']}" for r in rows
    ]
    _emit(args, {"data_version": data_version(ws), "batches": rows}, "\n".join(lines))


def cmd_train(args: argparse.Namespace) -> None:
    from ifd.train.run import run_training

    summary = run_training(_workspace(args), _config(args), stream=Path(args.stream) if args.stream else None,
                           out=Path(args.out), resume=not args.no_resume, progress=_progress)
    _emit(args, summary, summary.get("text", json.dumps(summary, default=str)))


def cmd_demo(args: argparse.Namespace) -> None:
    from ifd.demo import run_demo

    summary = run_demo(Path(args.workspace or ".ifd/demo"), _config(args), fresh=not args.keep, progress=_progress,
                       naive_check=not args.no_naive_check)
    _emit(args, summary, summary["text"])


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workspace", help="workspace directory (default: $IFD_WORKSPACE or the current directory)")
    p.add_argument("--params", help="params file (default: <workspace>/params.yaml)")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ifd", description="Incremental forgery detection platform.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func: Callable[[argparse.Namespace], None], help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        _add_common(p)
        p.set_defaults(func=func)
        return p

    p = add("init", cmd_init, "make the workspace a DVC project with an empty batch catalogue")
    p.add_argument("--remote", help="default DVC remote URL (ssh://user@host/path, s3://bucket/path or a folder); "
                   "without it an existing default remote is kept, else .ifd/dvc-remote")
    p.add_argument("--remote-option", dest="remote_option", action="append", metavar="KEY=VALUE",
                   help="a DVC remote option (keyfile, port, user, endpointurl, ...) kept in .dvc/config.local")

    p = add("synth", cmd_synth, "write a synthetic forgery stream, one batch per generator family")
    p.add_argument("out", help="output folder")
    p.add_argument("--tasks", type=int, help="number of batches (generator families)")
    p.add_argument("--per-class", dest="per_class", type=int, help="images per class per batch")
    p.add_argument("--size", type=int, help="image side in pixels")
    p.add_argument("--seed", type=int, help="random seed (same seed, same bytes)")
    p.add_argument("--families", help="generator families in stream order, comma-separated, or a set: default, "
                   "lowfreq (weak low-frequency traces), widened (default + lowfreq); without --tasks, one task each")

    p = add("ingest", cmd_ingest, "validate a batch, copy it into data/ and version it with DVC (the ingest flow)")
    p.add_argument("batch", help="batch folder (or DeepfakeBench JSON file)")
    p.add_argument("--name", help="batch name (default: the folder's name)")
    p.add_argument("--format", default="manifest", choices=["manifest", "folders", "deepfakebench", "video"])
    p.add_argument("--replace", action="store_true", help="replace an already ingested batch of that name")

    add("catalog", cmd_catalog, "list the ingested batches and the data version")

    p = add("train", cmd_train, "learn every ingested batch (or a stream folder) incrementally; write metrics and plots")
    p.add_argument("--stream", help="a stream folder from `ifd synth` instead of the workspace's batches")
    p.add_argument("--out", default="artifacts/train", help="output folder for state, metrics and plots")
    p.add_argument("--no-resume", action="store_true", help="start over even if a previous run left checkpoints")

    p = add("demo", cmd_demo, "the whole loop on a synthetic stream, end to end")
    p.add_argument("--keep", action="store_true", help="keep an existing demo workspace instead of starting fresh")
    p.add_argument("--no-naive-check", action="store_true",
                   help="skip sending a naive fine-tuning candidate through the gate before the last batch")

    for module in COMMAND_MODULES:
        import_module(module).register(add)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from ifd.commands.preflight import check
    from ifd.progress import activate, reporter_from_env

    args = build_parser().parse_args(argv)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    try:
        check(args)  # fail fast: before any server, flow or heavy import starts
        with activate(reporter_from_env(json_output=args.json)):
            args.func(args)
    except BatchRefused as exc:
        print(f"ifd: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except IfdError as exc:
        print(f"ifd: error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("ifd: error: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
