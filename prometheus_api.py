"""A small client of Prometheus' HTTP API: instant and range queries, each within a timeout.

Shared by the autoscaler's Prometheus source (`operator/autoscaler/prometheus.py`) and the console's
charts over time (`billing/console/history.py`). Every failure — unreachable, timed out, a query
Prometheus refused, an answer that is not its API — is one `PrometheusError` naming the server and
the query; an empty result is an empty list, never a zero.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

import aiohttp

Result = TypeVar("Result")


class PrometheusError(Exception):
    """Prometheus could not be read: the message says which server, which query and why."""


@dataclass(frozen=True)
class Sample:
    """One series of an instant vector: its labels (`__name__` included) and value."""

    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True)
class Series:
    """One series of a range query: its labels and (Unix seconds, value) points, oldest first."""

    labels: Mapping[str, str]
    points: tuple[tuple[float, float], ...]


def label_literal(value: str) -> str:
    """`value` as a PromQL string literal (double-quoted, escaped; Go reads JSON's escapes, and other
    characters are kept as they are)."""
    return json.dumps(value, ensure_ascii=False)


def exact_alternatives(values: list[str]) -> str:
    """A PromQL regex string literal matching exactly the given values (RE2 syntax, anchored by
    PromQL itself)."""
    return label_literal("|".join(_re2_escape(value) for value in values))


def _re2_escape(value: str) -> str:
    return "".join("\\" + char if char in r"\.+*?()|[]{}^$" else char for char in value)


def instant_vector(body: Any) -> list[Sample]:
    """The samples of a /api/v1/query answer whose result is a vector (pure)."""
    data = _data(body)
    if data.get("resultType") != "vector":
        raise PrometheusError(f"expected a vector result, got {data.get('resultType')!r}")
    try:
        return [Sample(dict(item["metric"]), _number(item["value"][1])) for item in data["result"]]
    except (KeyError, IndexError, TypeError, ValueError) as error:
        raise PrometheusError(f"malformed vector result: {error!r}") from None


def range_matrix(body: Any) -> list[Series]:
    """The series of a /api/v1/query_range answer (a matrix) (pure)."""
    data = _data(body)
    if data.get("resultType") != "matrix":
        raise PrometheusError(f"expected a matrix result, got {data.get('resultType')!r}")
    try:
        return [
            Series(dict(item["metric"]), tuple((float(t), _number(v)) for t, v in item["values"]))
            for item in data["result"]
        ]
    except (KeyError, IndexError, TypeError, ValueError) as error:
        raise PrometheusError(f"malformed matrix result: {error!r}") from None


def _number(text: Any) -> float:
    if not isinstance(text, str):
        raise ValueError(f"sample value {text!r} is not a string")
    return float(text)  # Prometheus writes NaN, +Inf and -Inf as Python reads them


def _data(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict) or "status" not in body:
        raise PrometheusError("the answer is not Prometheus' API (no status)")
    if body["status"] != "success":
        raise PrometheusError(f"{body.get('errorType', 'error')}: {body.get('error', 'no reason given')}")
    data = body.get("data")
    if not isinstance(data, dict):
        raise PrometheusError("the answer has no data")
    return data


class PrometheusClient:
    """Queries one Prometheus (`url` is its base, e.g. http://prometheus:9090). The HTTP session is
    made on first use inside the running loop; `close()` (or `async with`) ends it. Honours
    HTTP_PROXY/NO_PROXY."""

    def __init__(self, url: str, timeout_seconds: float) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"Prometheus URL {url!r} must start with http:// or https://")
        if timeout_seconds <= 0 or not math.isfinite(timeout_seconds):
            raise ValueError(
                f"Prometheus timeout must be a positive number of seconds, not {timeout_seconds}"
            )
        self.url = url.rstrip("/")
        self.timeout_seconds = timeout_seconds
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> PrometheusClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def query(
        self, expr: str, at: float | None = None, lookback_seconds: float | None = None
    ) -> list[Sample]:
        """The instant vector `expr` evaluates to (now, or at Unix time `at`). `lookback_seconds`
        replaces Prometheus' lookback (5 min by default): a series whose newest sample is older is
        absent from the answer."""
        form = {"query": expr}
        if at is not None:
            form["time"] = f"{at:.3f}"
        if lookback_seconds is not None:
            form["lookback_delta"] = f"{lookback_seconds:g}s"
        return self._parsed(expr, instant_vector, await self._post("/api/v1/query", expr, form))

    async def query_range(self, expr: str, start: float, end: float, step_seconds: float) -> list[Series]:
        """`expr` evaluated every `step_seconds` from `start` to `end` (Unix seconds)."""
        if step_seconds <= 0 or end < start:
            raise ValueError(
                f"a range query needs start <= end and a positive step (got {start}, {end}, {step_seconds})"
            )
        form = {"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step_seconds:g}s"}
        return self._parsed(expr, range_matrix, await self._post("/api/v1/query_range", expr, form))

    def _parsed(self, expr: str, parse: Callable[[Any], Result], body: Any) -> Result:
        try:
            return parse(body)
        except PrometheusError as error:
            raise PrometheusError(f"Prometheus at {self.url} could not answer {expr!r}: {error}") from None

    async def _post(self, path: str, expr: str, form: dict[str, str]) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout_seconds), trust_env=True
            )
        where = f"Prometheus at {self.url}"
        try:
            async with self._session.post(self.url + path, data=form) as response:
                text = await response.text()
                try:
                    body = json.loads(text)
                except ValueError:
                    raise PrometheusError(
                        f"{where} answered {response.status} with something that is not JSON: {text[:120]!r}"
                    ) from None
                if response.status >= 400 and not (isinstance(body, dict) and body.get("status") == "error"):
                    raise PrometheusError(f"{where} answered {response.status} to {expr!r}")
                return body
        except TimeoutError:
            raise PrometheusError(
                f"{where} did not answer {expr!r} within {self.timeout_seconds:g} s"
            ) from None
        except (aiohttp.ClientError, OSError) as error:
            raise PrometheusError(f"{where} is unreachable: {type(error).__name__}: {error}") from None
