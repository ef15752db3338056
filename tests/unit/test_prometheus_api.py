"""The Prometheus API client's pure parts: answers read, errors named, label values escaped."""

from __future__ import annotations

import math

import pytest

from modelplex.prometheus_api import (
    PrometheusClient,
    PrometheusError,
    Sample,
    Series,
    exact_alternatives,
    instant_vector,
    label_literal,
    range_matrix,
)


def test_a_vector_answer_gives_its_samples_with_nan_and_infinities_as_numbers() -> None:
    body = {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [
                {"metric": {"__name__": "up", "instance": "a:1"}, "value": [1700000000.5, "1"]},
                {"metric": {"instance": "b:1"}, "value": [1700000000.5, "NaN"]},
                {"metric": {}, "value": [1700000000.5, "+Inf"]},
            ],
        },
    }
    samples = instant_vector(body)
    assert samples[0] == Sample({"__name__": "up", "instance": "a:1"}, 1.0)
    assert math.isnan(samples[1].value)
    assert samples[2].value == math.inf


def test_a_matrix_answer_gives_its_points_in_order() -> None:
    body = {
        "status": "success",
        "data": {
            "resultType": "matrix",
            "result": [{"metric": {"m": "x"}, "values": [[10, "1"], [25, "2.5"]]}],
        },
    }
    assert range_matrix(body) == [Series({"m": "x"}, ((10.0, 1.0), (25.0, 2.5)))]


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (
            {"status": "error", "errorType": "bad_data", "error": "parse error at char 3"},
            "bad_data: parse error",
        ),
        ({"status": "success", "data": {"resultType": "matrix", "result": []}}, "expected a vector"),
        ({"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}}]}}, "malformed"),
        (
            {
                "status": "success",
                "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1, 2]}]},
            },
            "malformed",
        ),
        ("<html>", "not Prometheus' API"),
    ],
)
def test_an_answer_that_is_not_a_vector_says_why(body: object, named: str) -> None:
    with pytest.raises(PrometheusError, match=named):
        instant_vector(body)


def test_label_values_match_exactly_whatever_characters_they_hold() -> None:
    assert exact_alternatives(["10.0.0.1:8000", 'a"b\\c']) == '"10\\\\.0\\\\.0\\\\.1:8000|a\\"b\\\\\\\\c"'
    assert exact_alternatives(["x+y(1)"]) == '"x\\\\+y\\\\(1\\\\)"'
    assert label_literal("modèle-😀") == '"modèle-😀"'


@pytest.mark.parametrize(("url", "timeout"), [("prometheus:9090", 1.0), ("http://p:9090", 0.0)])
def test_a_bad_url_or_timeout_is_refused_by_name(url: str, timeout: float) -> None:
    with pytest.raises(ValueError, match="Prometheus"):
        PrometheusClient(url, timeout)
