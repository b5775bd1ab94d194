"""Train the shipped vehicle detector: `python -m app.worker.training.train --out DIR`.

YOLO11n from its architecture file (no pretrained weights), on the generated dataset,
on the CPU, offline. The result is copied to app/worker/models/its-vehicles-yolo11n.pt.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from app.worker.training.dataset import write_dataset

MODELS = Path(__file__).resolve().parents[1] / "models"
SEED = 20261125


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=45)
    parser.add_argument("--train-images", type=int, default=96)
    parser.add_argument("--val-images", type=int, default=24)
    args = parser.parse_args(argv)

    from ultralytics import YOLO

    work = Path(tempfile.mkdtemp(prefix="its-train-"))
    data = write_dataset(work / "dataset", SEED, args.train_images, args.val_images)
    started = time.monotonic()
    model = YOLO("yolo11n.yaml")
    model.train(
        data=str(data),
        epochs=args.epochs,
        imgsz=320,
        batch=16,
        workers=0,
        device="cpu",
        plots=False,
        seed=SEED,
        deterministic=True,
        project=str(work / "runs"),
        name="its-vehicles",
        verbose=False,
    )
    metrics = model.val(data=str(data), imgsz=320, batch=16, workers=0, device="cpu", plots=False)
    best = work / "runs" / "its-vehicles" / "weights" / "best.pt"
    MODELS.mkdir(exist_ok=True)
    shutil.copyfile(best, MODELS / "its-vehicles-yolo11n.pt")
    print(
        f"trained in {time.monotonic() - started:.0f}s: mAP50 {metrics.box.map50:.3f}, "
        f"mAP50-95 {metrics.box.map:.3f}; weights {MODELS / 'its-vehicles-yolo11n.pt'}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
