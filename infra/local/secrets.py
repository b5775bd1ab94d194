"""Credentials of the local platform: generated once, kept in the state directory (mode 0600).

They stand in for what operators put into Vault and the cluster's secret stores; the app never
reads this file: the provisioner writes its share into Vault and the app reads it from there.
Each stack names the credentials it needs (Stack.generated_secrets).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def _token() -> str:
    return secrets.token_urlsafe(24)


class PlatformSecrets:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.values: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}

    @classmethod
    def ensure(cls, path: Path, names: Iterable[str]) -> PlatformSecrets:
        """Load the secrets, generating any that are missing (so `up` twice keeps them)."""
        store = cls(path)
        missing = [name for name in names if name not in store.values]
        for name in missing:
            store.values[name] = _token()
        if missing or not path.exists():
            store.save()
        return store

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
