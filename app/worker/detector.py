"""The detector: weights from the repository (file://) or the its-models bucket (s3://),
never from a hub; YOLO on the configured device, batched."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from minio import Minio

from app.common.contracts import Detection
from infra.facts.paths import REPO_ROOT

os.environ.setdefault("YOLO_OFFLINE", "1")  # ultralytics must never try to download anything


def resolve_weights(uri: str, store: Minio | None, cache_dir: Path) -> Path:
    if uri.startswith("file://"):
        path = Path(uri.removeprefix("file://"))
        return path if path.is_absolute() else REPO_ROOT / path
    if uri.startswith("s3://"):
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        if store is None:
            raise ValueError(f"ITS_MODEL_URI {uri!r} needs the object store")
        target = cache_dir / bucket / key
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            store.fget_object(bucket, key, str(target))
        return target
    raise ValueError(f"ITS_MODEL_URI {uri!r}: expected file://... or s3://its-models/...")


class Detector:
    def __init__(self, weights: Path, device: str, confidence: float, classes: tuple[str, ...]) -> None:
        from ultralytics import YOLO

        self.model = YOLO(str(weights), task="detect")
        self.device = device
        self.confidence = confidence
        self.classes = set(classes)

    def detect(self, images: list[Any]) -> list[list[Detection]]:
        """One list of vehicle boxes per image, in pixel coordinates of the image."""
        if not images:
            return []
        results: list[Any] = list(
            self.model.predict(images, device=self.device, conf=self.confidence, verbose=False)
        )
        batches: list[list[Detection]] = []
        for result in results:
            names = result.names
            boxes = []
            for xyxy, conf, cls in zip(
                result.boxes.xyxy.tolist(), result.boxes.conf.tolist(), result.boxes.cls.tolist(), strict=True
            ):
                name = names[int(cls)]
                if name in self.classes:
                    x1, y1, x2, y2 = map(float, xyxy)
                    boxes.append(Detection(cls=name, confidence=float(conf), x1=x1, y1=y1, x2=x2, y2=y2))
            batches.append(boxes)
        return batches
