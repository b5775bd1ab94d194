"""Kafka's storage tool, run for real: a cluster id that starts with '-' formats a node."""

from __future__ import annotations

import subprocess
from pathlib import Path

from infra.facts.versions import versions
from infra.kernel.layout import CACHE_DIR
from infra.local.stacks.base import TEMPLATES
from infra.local.stacks.kafka import format_command, new_cluster_id

KAFKA_HOME = CACHE_DIR / "kafka" / versions()["KAFKA_VERSION"]


def _node(tmp_path: Path) -> Path:
    properties = tmp_path / "node.properties"
    properties.write_text(
        "process.roles=broker,controller\nnode.id=1\ncontroller.quorum.voters=1@127.0.0.1:1\n"
        "listeners=PLAINTEXT://127.0.0.1:2,CONTROLLER://127.0.0.1:1\ncontroller.listener.names=CONTROLLER\n"
        f"log.dirs={tmp_path / 'data'}\n"
    )
    return properties


def _dash_id() -> str:
    # One id in 64 starts with '-'; a few thousand draws find one.
    return next(i for i in (new_cluster_id() for _ in range(10_000)) if i.startswith("-"))


def test_an_id_starting_with_a_dash_formats_the_node(tmp_path: Path) -> None:
    cluster_id = _dash_id()
    log4j = TEMPLATES / "kafka" / "log4j2.properties"
    result = subprocess.run(
        format_command(KAFKA_HOME, log4j, cluster_id, _node(tmp_path)),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    meta = (tmp_path / "data" / "meta.properties").read_text()
    assert f"cluster.id={cluster_id}\n" in meta


def test_the_same_id_as_a_word_of_its_own_is_what_failed(tmp_path: Path) -> None:
    """The form `make up` used before: the storage tool reads the id as an option and refuses."""
    cluster_id = _dash_id()
    command = format_command(
        KAFKA_HOME, TEMPLATES / "kafka" / "log4j2.properties", cluster_id, _node(tmp_path)
    )
    split = [
        part
        for word in command
        for part in (["-t", cluster_id] if word.startswith("--cluster-id=") else [word])
    ]
    result = subprocess.run(split, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode != 0
    assert not (tmp_path / "data" / "meta.properties").exists()
