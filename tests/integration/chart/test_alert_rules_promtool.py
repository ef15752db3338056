"""The chart's alert rules read by Prometheus' own promtool (built by deploy/prometheus/build.sh):
`check rules` accepts every rule, and `test rules` fires two of them on series that should wake
someone and keeps them quiet on series that should not."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

from modelplex.deploy.monitoring.dashboards import OUT

ALERTS = OUT.parent / "alerts.yaml"


def _promtool(prometheus_bin: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(prometheus_bin / "promtool"), *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_promtool_accepts_every_shipped_rule(prometheus_bin: Path) -> None:
    rules = [rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]]
    checked = _promtool(prometheus_bin, "check", "rules", str(ALERTS))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(rules)} rules found" in checked.stdout


def test_promtool_refuses_a_rule_prometheus_could_not_load(prometheus_bin: Path, tmp_path: Path) -> None:
    document = yaml.safe_load(ALERTS.read_text())
    document["groups"][0]["rules"][0]["expr"] = "sum by (model) (rate(modelplex_gateway_requests_total[5m])"
    broken = tmp_path / "alerts.yaml"
    broken.write_text(yaml.safe_dump(document))
    checked = _promtool(prometheus_bin, "check", "rules", str(broken))
    assert checked.returncode != 0
    assert "unclosed left parenthesis" in checked.stdout + checked.stderr


def _alert_test(series: list[dict[str, str]], alerts: list[dict[str, Any]]) -> dict[str, Any]:
    return {"interval": "1m", "input_series": series, "alert_rule_test": alerts}


def test_promtool_fires_the_5xx_and_blind_autoscaler_alerts_when_they_should(
    prometheus_bin: Path, tmp_path: Path
) -> None:
    failing = 'modelplex_gateway_requests_total{model="llama",code="503",tenant="t"}'
    serving = 'modelplex_gateway_requests_total{model="llama",code="200",tenant="t"}'
    calm = 'modelplex_gateway_requests_total{model="small",code="200",tenant="t"}'
    blind = 'modelplex_autoscaler_unreadable_signals_total{deployment="serving/llama",model="llama"}'
    tests = {
        "rule_files": [str(ALERTS)],
        "evaluation_interval": "1m",
        "tests": [
            _alert_test(
                [
                    {"series": failing, "values": "0+10x40"},  # 10 of every 100 answers are 5xx
                    {"series": serving, "values": "0+90x40"},
                    {"series": calm, "values": "0+100x40"},
                    {"series": blind, "values": "0+30x40"},  # every reading unreadable
                ],
                [
                    {"eval_time": "5m", "alertname": "ModelplexGateway5xxRatioHigh", "exp_alerts": []},
                    {
                        "eval_time": "20m",
                        "alertname": "ModelplexGateway5xxRatioHigh",
                        "exp_alerts": [
                            {
                                "exp_labels": {"severity": "critical", "model": "llama"},
                                "exp_annotations": {
                                    "summary": "More than 5 % of the requests for llama fail with a 5xx",
                                    # $value rendered by humanizePercentage: the ratio the series make
                                    "description": "10% of the answers for model llama were 5xx over the"
                                    " last 5 minutes, for 10 minutes. 503 means a full queue, a cold start"
                                    " past its deadline, or the ledger or journal unavailable; 502/504 an"
                                    ' engine failing. The "Modelplex / Gateway" dashboard\'s Errors row'
                                    " says which.",
                                },
                            }
                        ],
                    },
                    {
                        "eval_time": "30m",
                        "alertname": "ModelplexAutoscalerBlind",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "severity": "warning",
                                    "deployment": "serving/llama",
                                    "model": "llama",
                                },
                                "exp_annotations": {
                                    "summary": "The autoscaler cannot read the load of serving/llama",
                                    "description": "For 15 minutes some engine or gateway /metrics page of"
                                    " serving/llama (model llama) could not be read, so the autoscaler"
                                    " decided nothing: its replicas stay where they are whatever the load."
                                    " Check the operator's log and the metrics token.",
                                },
                            }
                        ],
                    },
                ],
            )
        ],
    }
    written = tmp_path / "alerts_test.yaml"
    written.write_text(json.dumps(tests))  # JSON is YAML
    tested = _promtool(prometheus_bin, "test", "rules", str(written))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout
