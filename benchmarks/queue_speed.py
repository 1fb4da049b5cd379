"""What the rater team's overlap costs a rater's page: the to-do queue, the progress line and a save that
may not take an image's last place, on a store of 20,000 images rated by three raters (half of them).

    python benchmarks/queue_speed.py          (BENCH_IMAGES=N for another size)

Baselines, measured in the same run on the same store: the queue as it was before the team (the
rater's own annotations joined to the images, no counting, the same records built), and a plain save (``overlap=False``).
Each figure is the median of 15 runs after one warm-up.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from helpers import make_images, make_run  # noqa: E402

from sdaudit.records import QueuedImage  # noqa: E402
from sdaudit.scheme import Annotation  # noqa: E402
from sdaudit.store import Store  # noqa: E402
from sdaudit.store.team import Team, TeamSettings  # noqa: E402

IMAGES = int(os.environ.get("BENCH_IMAGES", "20000"))
OLD_QUEUE = (
    "SELECT i.image_id, i.run_key, i.seed, i.path, r.prompt, r.negative_prompt, r.model, "
    "a.image_id IS NOT NULL, a.person_present, a.gender, a.mst, a.skin_binary, a.confidence "
    "FROM images i JOIN runs r USING (run_key) JOIN studies s USING (study_id) "
    "LEFT JOIN annotations a ON a.image_id = i.image_id AND a.rater = ? "
    "WHERE s.name = ? AND NOT i.external AND a.image_id IS NULL ORDER BY i.run_key, i.seed"
)


def median_ms(work, runs: int = 15) -> float:
    work()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    store = Store()
    store.add_run(make_run())
    store.add_images(make_images(seeds=range(IMAGES)))
    rated = np.arange(1, IMAGES // 2 + 1)
    rows = pd.DataFrame({"image_id": np.tile(rated, 3), "rater": np.repeat(["ana", "ben", "cai"], len(rated)),
                         "person_present": True, "gender": "female", "mst": 3, "skin_binary": None,
                         "confidence": "high"})
    store.save_annotations(rows)
    Team(store).set_settings("default", TeamSettings(raters_per_image=4, repeat_every=50))

    def old_queue() -> list[QueuedImage]:
        """The queue as ``Store.annotation_queue`` read it before the team: the query and the records."""
        found = store.db.read(OLD_QUEUE, ["dan", "default"])
        return [QueuedImage(*row[:7], saved=Annotation(*row[8:]) if row[7] else None) for row in found]

    baseline = median_ms(old_queue)
    queue = median_ms(lambda: store.annotation_queue("default", "dan", only_missing=True, shuffled=False))
    progress = median_ms(lambda: store.annotation_progress("default", "dan"))
    labels = Annotation(True, "male", 7)
    image_ids = iter(range(IMAGES // 2 + 1, IMAGES + 1))
    plain = median_ms(lambda: store.save_annotation(next(image_ids), "eve", labels))
    capped = median_ms(lambda: store.save_annotation(next(image_ids), "fay", labels, overlap=True))
    print(f"{IMAGES:,} images, {len(rows):,} annotations; medians of 15 runs")
    print(f"to-do queue (counts ratings, repeats due): {queue:7.1f} ms  = {queue / baseline:4.2f}x the queue "
          f"before the team ({baseline:.1f} ms)")
    print(f"progress line (yours and complete):         {progress:7.1f} ms")
    print(f"save with the overlap check:                {capped:7.2f} ms  = {capped / plain:4.2f}x a plain save "
          f"({plain:.2f} ms)")


if __name__ == "__main__":
    main()
