"""Where the built images' digests are deployed from: the its-camera-ai chart's image values
of an environment (infrastructure/gitops/envs/<env>/values/its-camera-ai.yaml). The chart
renders `<registry>/<repository>@<digest>` when a digest is set, so ArgoCD deploys exactly the
image that was built and tested; the tag (the hash of the image's inputs) is for people."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import yaml

from infra.facts.paths import INFRASTRUCTURE, relative

CHART = "its-camera-ai"
# One line per component inside the file's `image:` block, e.g.  api: {tag: "0.1.0"}
_COMPONENT_LINE = re.compile(r"^  (?P<component>[a-z]+): \{.*\}$")


class GitOpsValuesError(ValueError):
    """The values file has no image line the recorder can rewrite; the message names the file."""


def values_file(env: str) -> Path:
    return INFRASTRUCTURE / "gitops" / "envs" / env / "values" / f"{CHART}.yaml"


def record(path: Path, images: Mapping[str, tuple[str, str]]) -> None:
    """Set image.<component>.tag and .digest in PATH for each component -> (tag, digest),
    rewriting only those lines (the file's comments and layout stay)."""
    lines = path.read_text().splitlines()
    try:
        start = lines.index("image:") + 1
    except ValueError:
        raise GitOpsValuesError(f"{relative(path)}: no top-level `image:` block") from None
    todo = dict(images)
    for number in range(start, len(lines)):
        match = _COMPONENT_LINE.match(lines[number])
        if not match:
            if lines[number].startswith("  "):
                continue
            break
        component = match["component"]
        if component in todo:
            tag, digest = todo.pop(component)
            lines[number] = f'  {component}: {{tag: "{tag}", digest: "{digest}"}}'
    if todo:
        raise GitOpsValuesError(
            f"{relative(path)}: image.{sorted(todo)[0]}: no `  <component>: {{...}}` line"
        )
    text = "\n".join(lines) + "\n"
    document = yaml.safe_load(text)
    for component, (tag, digest) in images.items():
        assert document["image"][component] == {"tag": tag, "digest": digest}, component
    path.write_text(text)
