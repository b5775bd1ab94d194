"""API keys of a benchmark run's own, made the way the platform makes its keys.

The API authenticates every call and limits each key to rate_limit_per_minute (app/common/
settings.py). A benchmark that needs more than one key's rate does not weaken either: it makes
keys with app.common.apikeys.generate_key and the platform's pepper (as infra/local/secrets.py
does), writes their hashed records to Vault beside the platform's (its/api/auth, the KV v2
envelope the vault stack's provisioner writes), and restarts the API so it reads them (it
otherwise re-reads Vault every five minutes). They expire in an hour; when the block ends Vault
gets the platform's own records back and the API is restarted again, so they no longer
authenticate.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from app.common.apikeys import ApiKeyRecord, Role, dump_records, generate_key
from app.common.secrets import API_KEYS_PATH
from infra.facts.vault import vault_layout
from infra.kernel.health import wait_until
from infra.local.platform import Platform
from infra.local.stacks import App, Vault

KEY_TTL = timedelta(hours=1)


def write_key_records(platform: Platform, records: list[ApiKeyRecord]) -> None:
    """its/api/auth as the vault stack's provisioner writes it (the KV v2 envelope)."""
    vault = platform.stack(Vault).client(platform.secrets["vault_init"]["root_token"])
    data = {"api_keys": dump_records(records)}
    vault.write_data(
        f"{vault_layout().kv_mount}/data/{API_KEYS_PATH}", data={"data": data, "metadata": {"version": 1}}
    )


def restart_api(platform: Platform) -> None:
    platform.supervisor.stop("api")
    platform.supervisor.start("api")
    app = platform.stack(App)
    wait_until("the API answering /readyz", app.api, timeout=60)


@contextmanager
def run_keys(platform: Platform, prefix: str, count: int, role: Role) -> Iterator[dict[str, str]]:
    """`count` keys of `role` (a camera key bound to the camera named like its id): key id ->
    presented key. Known to the API for the block only."""
    pepper = platform.secrets["api_pepper"]
    keys: dict[str, str] = {}
    records = []
    for number in range(count):
        key_id = f"{prefix}-{number:03d}"
        cameras = (key_id,) if role == "camera" else ()
        presented, record = generate_key(key_id, role, cameras, KEY_TTL, pepper=pepper)
        keys[key_id] = presented
        records.append(record)
    write_key_records(platform, [*platform.secrets.api_key_records(), *records])
    try:
        restart_api(platform)
        yield keys
    finally:
        write_key_records(platform, platform.secrets.api_key_records())
        restart_api(platform)
