"""checkov (an IaC scanner, in its own virtualenv) finds nothing in what the charts render for
every environment, every skip carries its reason, and it does flag a manifest that is unsafe."""

from __future__ import annotations

import functools
import itertools
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from infra.facts.paths import REPO_ROOT
from tests.charts.helm import CHARTS_DIR, ENVIRONMENTS, charts, env_render

CONFIG = CHARTS_DIR / ".checkov.yaml"
SKIP_ANNOTATION = re.compile(r"^checkov\.io/skip\d+$")


@functools.cache
def checkov_binary() -> Path:
    candidates = [Path(p) for p in (os.environ.get("ITS_CHECKOV"),) if p]
    candidates.append(REPO_ROOT / "tools" / "checkov" / "venv" / "bin" / "checkov")
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail(
        "checkov not found (ITS_CHECKOV or tools/checkov/venv/bin/checkov): run tools/install.sh checkov"
    )


def run_checkov(directory: Path) -> dict[str, Any]:
    result = subprocess.run(
        [
            str(checkov_binary()),
            "--directory",
            str(directory),
            "--framework",
            "kubernetes",
            "--config-file",
            str(CONFIG),
            "--output",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=directory,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_NO_OUTPUT_COLOR": "1"},
    )
    # Exit 1 means findings; anything else but 0 is checkov failing to run.
    assert result.returncode in (0, 1), result.stderr[-3000:]
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    merged: dict[str, Any] = {"failed_checks": [], "skipped_checks": [], "passed": 0}
    for part in reports:
        results = part.get("results", {})
        merged["failed_checks"] += results.get("failed_checks", [])
        merged["skipped_checks"] += results.get("skipped_checks", [])
        merged["passed"] += part.get("summary", {}).get("passed", 0)
    return merged


@pytest.fixture(scope="module")
def rendered_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("rendered")
    for chart, env in itertools.product(charts(), ENVIRONMENTS):
        (directory / f"{chart}-{env}.yaml").write_text(env_render(chart, env).text)
    return directory


def test_checkov_finds_nothing_in_any_environment(rendered_dir: Path) -> None:
    report = run_checkov(rendered_dir)
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}"
        for c in report["failed_checks"]
    ]
    assert report["passed"] > 100, "checkov checked (almost) nothing"
    assert not failed, "\n".join(failed)
    assert report["skipped_checks"], "the helm test pod's probe skips should be reported"
    for skipped in report["skipped_checks"]:
        reason = str((skipped.get("check_result") or {}).get("suppress_comment") or "").strip()
        assert len(reason) > 20, f"{skipped['check_id']} on {skipped['resource']} skipped without a reason"


def test_every_skip_in_the_config_file_has_a_reason() -> None:
    """Each skipped check id in .checkov.yaml is preceded by a comment naming it and saying why."""
    lines = CONFIG.read_text().splitlines()
    skips = [(i, line.strip()[2:]) for i, line in enumerate(lines) if re.match(r"^\s*- CKV_", line)]
    assert skips
    for index, check in skips:
        comment = []
        for line in reversed(lines[:index]):
            if not line.strip().startswith("#"):
                break
            comment.append(line)
        text = " ".join(comment)
        assert check in text and len(text) > 80, f"{check} is skipped without an explanation"


def test_every_skip_annotation_in_the_templates_has_a_reason() -> None:
    for chart, env in itertools.product(charts(), ENVIRONMENTS):
        for obj in env_render(chart, env).objects:
            for key, value in (obj["metadata"].get("annotations") or {}).items():
                if SKIP_ANNOTATION.match(key):
                    check, _, reason = value.partition("=")
                    assert check.startswith("CKV_") and len(reason) > 20, f"{chart}@{env}: {key}: {value}"


UNSAFE_POD = """
apiVersion: v1
kind: Pod
metadata:
  name: unsafe
  namespace: its
spec:
  hostNetwork: true
  containers:
    - name: shell
      image: busybox:1.36.1
      securityContext:
        privileged: true
        allowPrivilegeEscalation: true
"""


def test_checkov_flags_an_unsafe_manifest(tmp_path: Path) -> None:
    (tmp_path / "unsafe.yaml").write_text(UNSAFE_POD)
    failed = {c["check_id"] for c in run_checkov(tmp_path)["failed_checks"]}
    # privileged, privilege escalation, host network, root, no limits, no probes, no seccomp
    assert {"CKV_K8S_16", "CKV_K8S_20", "CKV_K8S_19", "CKV_K8S_23", "CKV_K8S_11"} <= failed, failed
