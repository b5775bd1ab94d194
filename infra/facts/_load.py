"""One way to read a fact file: YAML into a pydantic model, errors naming the file and key."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from infra.facts.paths import relative

M = TypeVar("M", bound=BaseModel)


class FactFileError(ValueError):
    """A fact file under infrastructure/ is missing or invalid; the message names file and key."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def by_role(roles: BaseModel) -> list[Any]:
    """A roles model's values (topics, buckets, users by the role each plays), in file order."""
    return [getattr(roles, role) for role in type(roles).model_fields]


def load(model: type[M], path: Path) -> M:
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise FactFileError(f"{relative(path)}: {error}") from error
    try:
        return model.model_validate(document)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in e['loc']) or '(top)'}: {e['msg']}" for e in error.errors()
        )
        raise FactFileError(f"{relative(path)}: {problems}") from None
