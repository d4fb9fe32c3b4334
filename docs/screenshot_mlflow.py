"""Regenerate docs/mlflow_model_version.png: headless Chromium (Debian's `chromium`) over the DevTools
protocol, so the assistant panel can be closed and the tags table shown whole before the shot.

    make mlflow &                      # or any MLflow server over a workspace that ran `ifd demo`
    .venv/bin/python docs/screenshot_mlflow.py http://127.0.0.1:5000 4 docs/mlflow_model_version.png
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import subprocess
import sys
import time
import urllib.request

from PIL import Image

SIZE = (1400, 1420)
PORT = 9333
STEPS = [
    'Array.from(document.querySelectorAll("button")).find(b => b.getAttribute("aria-label") === "Close")?.click()',
    'document.querySelectorAll(".du-bois-light-table-body").forEach(e => {'
    ' e.style.maxHeight = "none"; e.style.height = "auto"; e.style.overflow = "visible"; })',
    'Array.from(document.querySelectorAll("*")).find(e => e.innerText && e.innerText.trim() === "Schema"'
    " && e.children.length < 3)?.click()",
]


async def _shoot(ws_url: str, url: str) -> bytes:
    import websockets

    async with websockets.connect(ws_url, max_size=50_000_000) as ws:
        counter = 0

        async def call(method: str, **params: object) -> dict:
            nonlocal counter
            counter += 1
            await ws.send(json.dumps({"id": counter, "method": method, "params": params}))
            while True:
                msg = json.loads(await ws.recv())
                if msg.get("id") == counter:
                    return msg.get("result", {})

        await call("Emulation.setDeviceMetricsOverride", width=SIZE[0], height=SIZE[1], deviceScaleFactor=1, mobile=False)
        await call("Page.navigate", url=url)
        await asyncio.sleep(8)
        for js in STEPS:
            await call("Runtime.evaluate", expression=js)
            await asyncio.sleep(2)
        return base64.b64decode((await call("Page.captureScreenshot", format="png"))["data"])


def main(server: str, version: str, out: str) -> None:
    args = ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
            f"--window-size={SIZE[0]},{SIZE[1]}", f"--remote-debugging-port={PORT}", "about:blank"]
    browser = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                tabs = json.load(urllib.request.urlopen(f"http://127.0.0.1:{PORT}/json"))
                break
            except OSError:
                time.sleep(0.2)
        page = next(t for t in tabs if t["type"] == "page")["webSocketDebuggerUrl"]
        png = asyncio.run(_shoot(page, f"{server}/#/models/ifd-detector/versions/{version}"))
    finally:
        browser.terminate()
        browser.wait(10)
    # 64 colours keep the PNG small enough to commit (~60 KB instead of ~200 KB).
    Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=64).save(out, optimize=True)


if __name__ == "__main__":
    main(*sys.argv[1:4])
