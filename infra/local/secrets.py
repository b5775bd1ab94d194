"""Credentials of the local platform: generated once, kept in the state directory (mode 0600).

They stand in for what operators put into Vault and the cluster's secret stores; the app never
reads this file: the provisioner writes its share into Vault and the app reads it from there.
Each stack names the credentials it needs (Stack.generated_secrets).

API keys: an operator key, a viewer key and a camera key for each local camera, made with
app.common.apikeys.generate_key. The presented keys stay here and in api-credentials.json
beside this file (both 0600, for the clients: smoke check, tests, load tests); Vault gets only
the hashed records and the pepper.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from app.common.apikeys import ApiCredentials, ApiKeyRecord, Role, generate_key, new_pepper

LOCAL_CAMERAS = ("local-cam-1", "local-cam-2")
# holder -> (key id, role, cameras it may post for)
API_KEYS: dict[str, tuple[str, Role, tuple[str, ...]]] = {
    "operator": ("local-operator", "operator", ()),
    "viewer": ("local-viewer", "viewer", ()),
    **{f"camera:{camera}": (camera, "camera", (camera,)) for camera in LOCAL_CAMERAS},
}
API_KEY_TTL = timedelta(days=365)
# A key this close to expiry is replaced on the next `up` (which writes the new records to Vault).
API_KEY_RENEWAL = timedelta(days=30)
# The plaintext keys of an earlier layout: dropped, their replacements are hashed in Vault.
RETIRED = ("api_key_operator", "api_key_camera", "api_key_viewer")


def _token() -> str:
    return secrets.token_urlsafe(24)


class PlatformSecrets:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.values: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}

    @classmethod
    def ensure(cls, path: Path, names: Iterable[str]) -> PlatformSecrets:
        """Load the secrets, generating any of `names` (each stack's) that are missing, and the
        API keys (so `up` twice keeps them)."""
        store = cls(path)
        changed = not path.exists()
        for name in names:
            if name not in store.values:
                store.values[name] = _token()
                changed = True
        changed = store._ensure_api_keys() or changed
        if changed:
            store.save()
        if changed or not store.credentials_file.exists():
            store.api_credentials().write(store.credentials_file)
        return store

    def _ensure_api_keys(self) -> bool:
        changed = False
        for name in RETIRED:
            changed = self.values.pop(name, None) is not None or changed
        if "api_pepper" not in self.values:
            # A new pepper invalidates every hash made with the old one: new keys for all.
            self.values["api_pepper"] = new_pepper()
            self.values["api_keys"] = {}
            changed = True
        keys: dict[str, dict[str, Any]] = self.values.setdefault("api_keys", {})
        renew_before = datetime.now(UTC) + API_KEY_RENEWAL
        for holder, (key_id, role, cameras) in API_KEYS.items():
            entry = keys.get(holder)
            if entry is None or ApiKeyRecord.model_validate(entry["record"]).expires_at < renew_before:
                presented, record = generate_key(
                    key_id, role, cameras, API_KEY_TTL, pepper=self.values["api_pepper"]
                )
                keys[holder] = {"key": presented, "record": record.model_dump(mode="json")}
                changed = True
        return changed

    @property
    def credentials_file(self) -> Path:
        return self.path.with_name("api-credentials.json")

    def api_key_records(self) -> list[ApiKeyRecord]:
        """What Vault gets: the records (hashes), never the presented keys."""
        return [ApiKeyRecord.model_validate(entry["record"]) for entry in self.values["api_keys"].values()]

    def api_credentials(self) -> ApiCredentials:
        keys = self.values["api_keys"]
        return ApiCredentials(
            operator=keys["operator"]["key"],
            viewer=keys["viewer"]["key"],
            cameras={camera: keys[f"camera:{camera}"]["key"] for camera in LOCAL_CAMERAS},
        )

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.parent.chmod(0o700)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.values, indent=2, sort_keys=True))
        tmp.chmod(0o600)
        tmp.replace(self.path)

    def __getitem__(self, name: str) -> Any:
        return self.values[name]

    def __setitem__(self, name: str, value: Any) -> None:
        self.values[name] = value
        self.save()

    def get(self, name: str) -> Any:
        return self.values.get(name)
