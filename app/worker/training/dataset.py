"""A synthetic traffic dataset for training the shipped vehicle detector offline.

No package ships pretrained YOLO weights and model hubs are unreachable from the machines that
build this project, so the worker's model is trained on generated street scenes: a road,
lane marks, and cars (small wide bodies with windows and wheels) and trucks (long tall
bodies with a cab). Deterministic for a seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw

CLASSES = ("car", "truck")
SIZE = 320


@dataclass(frozen=True)
class Box:
    cls: int
    x1: float
    y1: float
    x2: float
    y2: float

    def yolo_label(self) -> str:
        cx, cy = (self.x1 + self.x2) / 2 / SIZE, (self.y1 + self.y2) / 2 / SIZE
        w, h = (self.x2 - self.x1) / SIZE, (self.y2 - self.y1) / SIZE
        return f"{self.cls} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}"


def _colour(rng: random.Random) -> tuple[int, int, int]:
    return (rng.randint(30, 255), rng.randint(30, 255), rng.randint(30, 255))


def _draw_vehicle(draw: ImageDraw.ImageDraw, rng: random.Random, cls: int, x: int, y: int) -> Box:
    if cls == 0:  # car
        w, h = rng.randint(40, 64), rng.randint(20, 28)
        draw.rectangle([x, y + h // 3, x + w, y + h], fill=_colour(rng))
        draw.rectangle([x + w // 5, y, x + 4 * w // 5, y + h // 3 + 2], fill=_colour(rng))
        draw.rectangle([x + w // 4, y + 3, x + 3 * w // 4, y + h // 3], fill=(40, 60, 80))
    else:  # truck
        w, h = rng.randint(80, 120), rng.randint(38, 52)
        draw.rectangle([x, y, x + int(w * 0.72), y + h - 6], fill=_colour(rng))
        draw.rectangle([x + int(w * 0.74), y + h // 3, x + w, y + h - 6], fill=_colour(rng))
        draw.rectangle([x + int(w * 0.8), y + h // 3 + 3, x + w - 4, y + h // 2], fill=(40, 60, 80))
    for wheel_x in (x + w // 6, x + 5 * w // 6):
        draw.ellipse([wheel_x - 5, y + h - 10, wheel_x + 5, y + h], fill=(15, 15, 15))
    return Box(cls, x, y, x + w, y + h)


def scene(rng: random.Random, max_vehicles: int = 4) -> tuple[Image.Image, list[Box]]:
    grey = rng.randint(70, 120)
    image = Image.new("RGB", (SIZE, SIZE), (grey, grey + rng.randint(-8, 8), grey))
    draw = ImageDraw.Draw(image)
    draw.rectangle([0, 0, SIZE, rng.randint(30, 70)], fill=(rng.randint(60, 140), rng.randint(120, 180), 80))
    for lane_y in (110, 200):
        for x in range(0, SIZE, 40):
            draw.rectangle([x, lane_y, x + 20, lane_y + 3], fill=(230, 230, 230))
    boxes: list[Box] = []
    lanes = [80, 140, 230]
    rng.shuffle(lanes)
    for lane in lanes[: rng.randint(1, min(3, max_vehicles))]:
        x = rng.randint(5, 60)
        while x < SIZE - 130 and len(boxes) < max_vehicles:
            box = _draw_vehicle(draw, rng, rng.randint(0, 1), x, lane + rng.randint(-6, 6))
            boxes.append(box)
            x = int(box.x2) + rng.randint(15, 60)
    return image, boxes


def write_dataset(root: Path, seed: int, train: int, val: int) -> Path:
    rng = random.Random(seed)  # noqa: S311 - a reproducible dataset, not a secret
    for split, count in (("train", train), ("val", val)):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            image, boxes = scene(rng)
            image.save(root / "images" / split / f"{index:04d}.jpg", quality=92)
            (root / "labels" / split / f"{index:04d}.txt").write_text(
                "\n".join(b.yolo_label() for b in boxes) + "\n"
            )
    data = root / "data.yaml"
    names = "\n".join(f"  {i}: {name}" for i, name in enumerate(CLASSES))
    data.write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames:\n{names}\n")
    return data
