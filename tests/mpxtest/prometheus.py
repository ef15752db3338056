"""A real Prometheus (built by deploy/prometheus/build.sh, cached by version) on a free 127.0.0.1
port, scraping what a test names every second, stopped afterwards; and its promtool.

One server per test session: its targets come from files (`file_sd_configs`) that `scrape()`
rewrites, so each test points it at the endpoints it serves (`metricsproxy.MetricsPage`), in a
group of its own.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import modelplex
from mpxtest.wait import eventually

BUILD_SCRIPT = Path(modelplex.__file__).parent / "deploy" / "prometheus" / "build.sh"
SCRAPE_SECONDS = 1


def prometheus_binaries() -> Path:
    """The folder holding prometheus and promtool, built on first use (cold: about 4 minutes)."""
    result = subprocess.run(
        ["bash", str(BUILD_SCRIPT)], stdout=subprocess.PIPE, stderr=None, text=True, check=False
    )
    assert result.returncode == 0, f"deploy/prometheus/build.sh failed (exit {result.returncode}); see above"
    return Path(result.stdout.strip().splitlines()[-1])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PrometheusServer:
    def __init__(self, binaries: Path, directory: Path, proxy_url: str | None = None) -> None:
        """`proxy_url`: scrape every target through this HTTP proxy (kwok's pods run nothing; a
        `metricsproxy.MetricsProxy` answers for their addresses)."""
        self.directory = directory
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.targets = directory / "targets"
        self.targets.mkdir()
        interval = f"{SCRAPE_SECONDS}s"
        config = {
            "global": {"scrape_interval": interval, "scrape_timeout": interval},
            "scrape_configs": [
                {
                    "job_name": "tests",
                    "file_sd_configs": [
                        {"files": [str(self.targets / "*.json")], "refresh_interval": interval}
                    ],
                    **({"proxy_url": proxy_url} if proxy_url else {}),
                }
            ],
        }
        (directory / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
        self._log = (directory / "prometheus.log").open("wb")
        self._process = subprocess.Popen(
            [
                str(binaries / "prometheus"),
                f"--config.file={directory / 'prometheus.yml'}",
                f"--storage.tsdb.path={directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        eventually(self._ready, timeout=60, what=f"Prometheus ready on {self.url} (log: {self._log.name})")

    def _ready(self) -> bool:
        assert self._process.poll() is None, (self.directory / "prometheus.log").read_text()
        try:
            with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def scrape(self, group: str, addresses: list[str]) -> None:
        """Scrape `addresses` (host:port, /metrics) from now on, labelled `group=<group>`; an empty
        list stops scraping them."""
        path = self.targets / f"{group}.json"
        body = json.dumps([{"targets": addresses, "labels": {"group": group}}] if addresses else [])
        partial = path.with_suffix(".tmp")
        partial.write_text(body)
        os.replace(partial, path)  # Prometheus must never read half a file

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The result of an instant query, for tests that wait on what Prometheus holds."""
        form = urllib.parse.urlencode({"query": expr}).encode()
        with urllib.request.urlopen(f"{self.url}/api/v1/query", data=form, timeout=5) as response:
            body = json.loads(response.read())
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def wait_scraped(self, addresses: list[str], timeout: float = 30) -> None:
        """Until every address has been scraped successfully (its `up` is 1)."""

        def all_up() -> bool:
            up = {item["metric"]["instance"]: item["value"][1] for item in self.query("up")}
            return all(up.get(address) == "1" for address in addresses)

        eventually(all_up, timeout=timeout, what=f"Prometheus scraping {addresses}")

    def stop(self) -> None:
        self._process.terminate()
        try:
            self._process.wait(15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(5)
        self._log.close()


@pytest.fixture(scope="session")
def prometheus_bin() -> Path:
    """The folder of the pinned prometheus and promtool."""
    return prometheus_binaries()


@pytest.fixture(scope="session")
def prometheus(prometheus_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusServer]:
    """A Prometheus started for this test session, scraping every second what tests hand `scrape()`."""
    server = PrometheusServer(prometheus_bin, tmp_path_factory.mktemp("prometheus"))
    try:
        yield server
    finally:
        server.stop()
