"""`ifd protocol list` and `ifd protocol build NAME --dfb-root DIR --out STREAM`: the published protocols.

`build` writes a stream folder from DeepfakeBench JSON manifests (ifd/data/protocol.py); then
`ifd bench STREAM --strategies lid:paper-b4` or `ifd train --stream STREAM` runs it. Each task folder is
also a manifest batch that `ifd ingest STREAM/<task> --name <task>` can ingest into a workspace.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ifd.commands.common import AddCommand, config, emit, progress
from ifd.errors import IfdError


def cmd_protocol(args: argparse.Namespace) -> None:
    from ifd.data.protocol import default_dirs, known_protocols, load_protocol

    if args.action == "list":
        rows = {name: load_protocol(name) for name in known_protocols()}
        emit(args, {n: p.model_dump(by_alias=True) for n, p in rows.items()},
             "\n".join(f"{n}: {p.description} ({', '.join(t.name for t in p.tasks)})" for n, p in rows.items()))
        return
    if not args.protocol or not args.dfb_root or not args.out:
        raise IfdError("ifd protocol build needs a protocol name (or YAML file), --dfb-root DIR and --out STREAM")
    from ifd.data.protocol import build_protocol

    root = Path(args.dfb_root)
    if not root.is_dir():
        raise IfdError(f"--dfb-root {root}: not a folder (a DeepfakeBench checkout or a folder of dataset JSONs)")
    json_dir, frames_root = default_dirs(root)
    protocol = load_protocol(args.protocol)
    record = build_protocol(
        protocol, Path(args.out), Path(args.json_dir) if args.json_dir else json_dir,
        Path(args.frames_root) if args.frames_root else frames_root, base=config(args).ingest,
        frames_per_video=args.frames_per_video, replace=args.replace, progress=progress,
    )
    lines = [f"{name}: {info['rows']} frames, {info.get('videos')} videos" for name, info in record["tasks"].items()]
    lines.append(f"stream written to {args.out}; run: ifd bench {args.out} --strategies lid:paper-b4")
    emit(args, {"out": str(args.out), **record}, "\n".join(lines))


def register(add: AddCommand) -> None:
    """Add `ifd protocol`."""
    p = add("protocol", cmd_protocol, "the published protocols (SUR-LID P1, P2) as streams built from DeepfakeBench JSONs")
    p.add_argument("action", choices=["list", "build"], help="list the shipped protocols, or build a stream folder")
    p.add_argument("protocol", nargs="?", help="protocol1, protocol2, or a YAML file of the same shape")
    p.add_argument("--dfb-root", dest="dfb_root", help="DeepfakeBench folder (JSONs in preprocessing/dataset_json, frames in datasets/rgb)")
    p.add_argument("--out", help="stream folder to write (must be empty)")
    p.add_argument("--json-dir", dest="json_dir", help="folder of the dataset JSONs (default: from --dfb-root)")
    p.add_argument("--frames-root", dest="frames_root", help="folder the JSONs' frame paths start from (default: from --dfb-root)")
    p.add_argument("--frames-per-video", dest="frames_per_video", type=int, help="frames sampled evenly per video (default: the protocol's)")
    p.add_argument("--replace", action="store_true", help="overwrite a non-empty --out")
