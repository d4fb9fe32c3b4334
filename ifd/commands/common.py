"""What every command handler shares: progress on stderr, the result on stdout, workspace and config."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

Handler = Callable[[argparse.Namespace], None]
AddCommand = Callable[[str, Handler, str], argparse.ArgumentParser]


def progress(msg: str) -> None:
    """A progress line on stderr; through the command's display (above its bars) when one is active."""
    from ifd.progress import active

    reporter = active()
    if reporter is not None:
        reporter(msg)
    else:
        print(msg, file=sys.stderr, flush=True)


def emit(args: argparse.Namespace, result: Any, human: str) -> None:
    """JSON on stdout with --json, else the human text."""
    print(json.dumps(result, indent=1, default=str) if args.json else human)


def workspace(args: argparse.Namespace) -> Any:
    from ifd.workspace import Workspace

    return Workspace.at(args.workspace)


def config(args: argparse.Namespace) -> Any:
    from ifd.config import load_config

    ws = workspace(args)
    return load_config(Path(args.params) if args.params else ws.params_path)
