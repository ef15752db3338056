"""Time from `make up` to the first streamed token through the gateway, warm or cold.

Warm: the engine and the model are cached (a second `make up`). Cold: an empty engine cache
(`--cold`): the engine is installed and the model prepared first, as on a fresh machine; the main
virtualenv's install is not included (it is the same for every command and takes ~1 minute).

    .venv/bin/python bench/up_first_token.py            # warm
    .venv/bin/python bench/up_first_token.py --cold     # downloads the engine again (~6 GB)
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

MODELPLEX = str(Path(sys.executable).parent / "modelplex")
ROOT = Path(__file__).resolve().parent.parent


def _phase(name: str, began: float) -> float:
    now = time.monotonic()
    print(f"{name:<40} {now - began:7.1f} s", flush=True)
    return now


def _first_token(base_url: str, key: str) -> None:
    body = {"model": "smollm2", "prompt": "Once upon a time", "max_tokens": 8, "stream": True}
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.stream("POST", f"{base_url}/completions", json=body, headers=headers, timeout=120) as reply:
        for line in reply.iter_lines():
            if line.startswith("data: {"):
                return
    raise RuntimeError("the stream ended without a token")


def _up_until_key(env: dict[str, str], port: int) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [MODELPLEX, "up", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        found = re.match(r"^API key: (mpx-\S+)$", line)
        if found:
            return process, found.group(1)
    raise RuntimeError(f"`modelplex up` exited ({process.wait()}) without printing a key")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold", action="store_true", help="start from an empty engine and model cache")
    parser.add_argument("--port", type=int, default=18123)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        env = {**os.environ, "MODELPLEX_LOCAL_STATE_DIR": scratch, "MODELPLEX_BILLING_STATE_DIR": scratch}
        began = mark = time.monotonic()
        if args.cold:
            env["MODELPLEX_ENGINE_CACHE_DIR"] = str(Path(scratch) / "cache")
            subprocess.run(
                ["bash", str(ROOT / "deploy" / "engine" / "install.sh")],
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
            )
            mark = _phase("engine installed", mark)
            subprocess.run(
                [MODELPLEX, "models", "prepare", "smollm2"], env=env, check=True, stdout=subprocess.DEVNULL
            )
            mark = _phase("model prepared", mark)
        process, key = _up_until_key(env, args.port)
        mark = _phase("modelplex up printed the key", mark)
        try:
            _first_token(f"http://127.0.0.1:{args.port}/v1", key)
            _phase("first token through the gateway", mark)
            _phase("total (to first token)", began)
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=120)


if __name__ == "__main__":
    main()
