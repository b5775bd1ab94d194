"""The kernel's port scheme and the local stacks' rendering, without starting anything."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from infra.facts.redis import redis_settings
from infra.kernel.ports import PortError, Ports
from infra.kernel.programs import closed_to_others
from infra.local.stacks.kafka import format_command
from infra.local.stacks.redis import redis_conf, sentinel_conf


def test_ports_are_base_plus_offset() -> None:
    ports = Ports(20000, {"api": 60, "redis": [20, 21, 22]})
    assert ports.api == 20060 and ports.many("redis") == [20020, 20021, 20022]
    with pytest.raises(AttributeError, match="is a list"):
        _ = ports.redis


def test_ports_refuse_a_shared_offset_and_the_ephemeral_range() -> None:
    with pytest.raises(PortError, match=r"ports\.b: offset 1 is also used by ports\.a"):
        Ports(20000, {"a": 1, "b": [2, 1]})
    with pytest.raises(PortError, match="ephemeral range"):
        Ports(32700, {"a": 0, "b": 90})


def test_redis_and_sentinel_configs_carry_every_declared_directive() -> None:
    settings = redis_settings()
    replica = redis_conf(settings, "redis1", 20021, "/tmp/r1", master_port=20020, replica_password="r")
    for key, value in settings.config.items():
        assert f"\n{key} {value}\n" in replica
    assert "replicaof 127.0.0.1 20020" in replica
    assert "replicaof" not in redis_conf(settings, "redis0", 20020, "/tmp/r0", None, replica_password="r")
    sentinel = sentinel_conf(
        settings, "sentinel0", 20023, "/tmp/s0", master_port=20020, sentinel_password="s"
    )
    monitor = f"sentinel monitor {settings.master_name} 127.0.0.1 20020 {settings.sentinel.quorum}"
    assert monitor in sentinel
    for key, value in settings.sentinel.config.items():
        assert f"sentinel {key} {settings.master_name} {value}" in sentinel


def test_a_cluster_id_is_one_word_with_its_option() -> None:
    """A generated id may start with '-': as a word of its own the storage tool would read it as
    an option (one `make up` in 64 failed so)."""
    from pathlib import Path

    command = format_command(Path("/k"), Path("/l"), "-AbC", Path("/p"))
    assert "--cluster-id=-AbC" in command and "-AbC" not in command


def test_a_directory_others_cannot_enter_on_the_way_to_the_state_is_named() -> None:
    """The postgres user must reach the state directory: a clone in a 0700 directory (a private
    home, `mktemp -d`) is named before any server starts, not found as a spawn error."""
    root = Path(tempfile.mkdtemp(dir="/tmp"))  # /tmp lets others in; the new directory is 0700
    try:
        state = root / "clone" / ".state"
        state.mkdir(parents=True)
        assert closed_to_others(state) == root
        root.chmod(0o755)
        assert closed_to_others(state) is None
        state.chmod(0o700)
        assert closed_to_others(state) == state
    finally:
        shutil.rmtree(root)
