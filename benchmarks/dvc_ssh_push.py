"""DVC over SSH on loopback: seconds to `dvc add data` and to push a batch of small image-sized files to a
real sshd (tests/sshd_loopback.py), and how `dvc add` grows with the files already versioned.

Per round: `--files` new files of `--kb` KB of random bytes into data/, `dvc add data` (timed), push to
the ssh:// remote (timed). Prints a Markdown table.

    .venv/bin/python benchmarks/dvc_ssh_push.py [--rounds 3] [--files 1000] [--kb 8]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--kb", type=int, default=8)
    args = ap.parse_args()
    import sshd_loopback

    from ifd.data import dvc_store
    from ifd.workspace import Workspace
    from ifd.workspace_init import init_workspace

    with tempfile.TemporaryDirectory() as tmp, sshd_loopback.loopback_sshd(Path(tmp) / "sshd") as server:
        ws = init_workspace(Workspace.at(Path(tmp) / "ws"), server.url(Path(tmp) / "store"),
                            {"keyfile": str(server.client_key)})
        print(f"load average at start: {os.getloadavg()[0]:.2f}; {args.files} files of {args.kb} KB per round\n")
        print("| round | files versioned | dvc add s | push s | pushed MB/s |\n|---:|---:|---:|---:|---:|")
        for r in range(1, args.rounds + 1):
            folder = ws.data_dir / "batches" / f"b{r}"
            folder.mkdir(parents=True)
            for i in range(args.files):
                (folder / f"{i:05d}.bin").write_bytes(os.urandom(args.kb * 1024))
            t0 = time.perf_counter()
            dvc_store.add_data(ws)
            t1 = time.perf_counter()
            dvc_store.push_data(ws)
            t2 = time.perf_counter()
            mb = args.files * args.kb / 1024
            print(f"| {r} | {r * args.files} | {t1 - t0:.1f} | {t2 - t1:.1f} | {mb / (t2 - t1):.2f} |", flush=True)


if __name__ == "__main__":
    main()
