"""The typed readers of infrastructure/: every fact file loads, and a wrong one is refused with
the file and the key named."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from infra.facts._load import FactFileError, load
from infra.facts.buckets import BUCKETS_FILE, BucketsFile, buckets
from infra.facts.recovery import RECOVERY_FILE, Recovery, recovery
from infra.facts.redis import redis_settings
from infra.facts.timeseries import timeseries
from infra.facts.topics import TOPICS_FILE, TopicsFile, topics
from infra.facts.vault import vault_layout
from infra.facts.versions import versions


def test_every_fact_file_loads() -> None:
    assert {t.name for t in topics().all()} >= {"camera-events", "vehicle-detections", "alerts"}
    # Dead letters outlive the events they came from: time to inspect and replay them.
    facts = topics()
    dead, events = facts.topics.dead_letters, facts.topics.camera_events
    assert int(facts.config(dead)["retention.ms"]) > int(facts.config(events)["retention.ms"])
    assert buckets().buckets.frames.lifecycle and buckets().users.api.policy
    assert redis_settings().sentinel.quorum <= redis_settings().sentinel.count
    assert timeseries().detections.retention
    assert vault_layout().kv_version == 2
    assert versions()["KAFKA_VERSION"]


def _broken(tmp_path: Path, source: Path, change: dict[str, object]) -> Path:
    document = yaml.safe_load(source.read_text())
    for dotted, value in change.items():
        *parents, leaf = dotted.split(".")
        node = document
        for part in parents:
            node = node[part]
        if value is None:
            del node[leaf]
        else:
            node[leaf] = value
    target = tmp_path / source.name
    target.write_text(yaml.safe_dump(document))
    return target


def test_a_topic_role_the_app_needs_cannot_go_missing(tmp_path: Path) -> None:
    with pytest.raises(FactFileError, match=r"topics\.yaml: topics\.alerts: Field required"):
        load(TopicsFile, _broken(tmp_path, TOPICS_FILE, {"topics.alerts": None}))


def test_a_wrong_value_is_named_by_its_key(tmp_path: Path) -> None:
    with pytest.raises(FactFileError, match=r"topics\.camera_events\.partitions"):
        load(TopicsFile, _broken(tmp_path, TOPICS_FILE, {"topics.camera_events.partitions": 0}))
    with pytest.raises(FactFileError, match=r"buckets\.yaml: .*no policies/nobody\.json"):
        load(BucketsFile, _broken(tmp_path, BUCKETS_FILE, {"users.api.policy": "nobody"}))


def test_an_unknown_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FactFileError, match=r"retension"):
        load(TopicsFile, _broken(tmp_path, TOPICS_FILE, {"defaults.retension": "1"}))


def test_recovery_objectives_load_and_a_lock_beyond_the_window_is_refused(tmp_path: Path) -> None:
    facts = recovery()
    assert facts.archive_timeout == f"{facts.rpo_minutes}min"
    assert facts.object_lock_days <= facts.retention_days
    broken = _broken(tmp_path, RECOVERY_FILE, {"object_lock_days": facts.retention_days + 1})
    with pytest.raises(FactFileError, match=r"recovery\.yaml.*object_lock_days"):
        load(Recovery, broken)
