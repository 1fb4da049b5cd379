"""What reading a snapshot back costs (issue 21): ``snapshot`` checks what it wrote with restore's
own checks, each image decoded whole, before it replaces the old snapshot.

    python benchmarks/snapshot_speed.py [--images 300] [--repeats 2]

A store of ``--images`` 512×512 PNGs (noise over a gradient, about 650 kB each, as large as a Stable
Diffusion image) is snapshotted with the read-back switched off (the baseline, measured in the same
run), then with it, alternately. The first read-back decodes every image; the later ones find each
image's sha256 among those this process has decoded and decode only new ones (the app's automatic
snapshots copy the same images again and again). Prints seconds and the ratio to the baseline.
"""

from __future__ import annotations

import argparse
import io
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from sdaudit.files import snapshot as snapshots
from sdaudit.files.snapshot_check import DECODED
from sdaudit.records import ImageRecord, RunRecord
from sdaudit.store import Store


def build_home(home: Path, count: int) -> None:
    rng = np.random.default_rng(0)
    gradient = np.linspace(0, 180, 512)[None, :, None]
    run = RunRecord(run_key="run-a", study="default", model="demo", model_revision=None, pipeline_class=None,
                    prompt="a doctor sitting behind a desk", negative_prompt="", scheduler="pndm", steps=50,
                    guidance=7.5, width=512, height=512, dtype="float16", device="cuda", batch_size=4,
                    safety_checker=False, versions={})
    with Store.open(home) as store:
        store.add_run(run)
        store.add_images([ImageRecord("run-a", seed, f"images/run-a/{seed}.png", f"{seed:064x}", None, 0.5, 4, "cpu")
                          for seed in range(count)])
    (home / "images" / "run-a").mkdir(parents=True)
    for seed in range(count):
        buffer = io.BytesIO()
        Image.fromarray((rng.random((512, 512, 3)) * 64 + gradient).astype("uint8")).save(buffer, "PNG")
        (home / "images" / "run-a" / f"{seed}.png").write_bytes(buffer.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sdaudit-bench-") as scratch:
        home, target = Path(scratch) / "home", str(Path(scratch) / "snap")
        build_home(home, args.images)
        checked = snapshots.check_snapshot
        with Store.open(home) as store:
            for repeat in range(args.repeats):
                timings = {}
                for label, check in (("no read-back", lambda folder, source: None), ("read-back", checked)):
                    snapshots.check_snapshot = check
                    started = time.perf_counter()
                    snapshots.snapshot(store, home, target)
                    timings[label] = time.perf_counter() - started
                snapshots.check_snapshot = checked
                first = "first read-back: decodes every image" if repeat == 0 else "images decoded before: skipped"
                print(f"{args.images} images, repeat {repeat + 1} ({first}): no read-back {timings['no read-back']:.2f} s, "
                      f"read-back {timings['read-back']:.2f} s, ratio {timings['read-back'] / timings['no read-back']:.1f}")
        DECODED.clear()
        shutil.rmtree(home)


if __name__ == "__main__":
    main()
