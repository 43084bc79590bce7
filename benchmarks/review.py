"""Push 1,000 pairs and pull 1,000 annotations through cinectrl vs the bare SDK calls for the same work.

Boots its own Label Studio (own venv, temp data dir; ~30-40 s first boot, not timed). Reference for push: one
`projects.create` + `import_storage.local.create` + `projects.import_tasks` of the same task dicts into a fresh
project. Reference for pull: `projects.exports.as_json` of the same annotated project. cinectrl's push adds
the catalog bookkeeping (task ids, review states); its pull adds parsing + reviews upsert + the gate.
Targets: push < 30 s, pull < 10 s, each within 1.5x of the reference.

    .venv/bin/python benchmarks/review.py [--pairs 1000]
"""

from __future__ import annotations

import argparse
import importlib.util
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _fixtures():
    spec = importlib.util.spec_from_file_location("review_fixtures", REPO / "tests/annotate/conftest.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=1000)
    args = ap.parse_args()
    from annotate import review, server
    from annotate.config import LABEL_CONFIG

    fx = _fixtures()
    root = Path(tempfile.mkdtemp(prefix="review-bench-"))
    clip = root / "one.mp4"
    fx.write_clip(clip, 90)
    cat = fx.make_catalog(root, args.pairs, name="bench", clip_file=clip)
    t = time.perf_counter()
    conn = server.start(root / "bench.db", boot_timeout=300)
    print(f"server boot {time.perf_counter() - t:.1f} s (not in the figures)")
    try:
        ls = review.client(conn)
        pairs = review._pairs_with_fps(cat, None)

        t = time.perf_counter()
        bare = ls.projects.create(title="bare", label_config=LABEL_CONFIG, maximum_annotations=1)
        ls.import_storage.local.create(project=bare.id, path=str(root / "media" / "bench"), title="bench",
                                       use_blob_urls=False)
        ls.projects.import_tasks(id=bare.id, request=[review._task(p) for p in pairs], return_task_ids=True)
        bare_push = time.perf_counter() - t

        t = time.perf_counter()
        res = review.push(cat, conn, overlap=1)
        ours_push = time.perf_counter() - t
        assert res.added == args.pairs, res

        tasks = [row[0] for row in cat.conn.execute("SELECT task_id FROM ls_tasks ORDER BY pair_id")]
        verdict = [{"from_name": "verdict", "to_name": "video_a", "type": "choices", "value": {"choices": ["accept"]}},
                   {"from_name": "effect_clarity", "to_name": "video_b", "type": "rating", "value": {"rating": 4}},
                   {"from_name": "defects", "to_name": "video_b", "type": "timelinelabels", "id": "x",
                    "value": {"ranges": [{"start": 1, "end": 3}], "timelinelabels": ["defective"]}}]
        t = time.perf_counter()
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda tid: ls.annotations.create(id=tid, result=verdict), tasks))
        print(f"annotating {len(tasks)} tasks through the SDK (setup) {time.perf_counter() - t:.1f} s")

        project_id = res.project_id
        t = time.perf_counter()
        exported = ls.projects.exports.as_json(project_id)
        bare_pull = time.perf_counter() - t
        assert sum(len(x.get("annotations", [])) for x in exported) == args.pairs

        t = time.perf_counter()
        out = review.pull(cat, conn)
        ours_pull = time.perf_counter() - t
        assert out.added == args.pairs and len(review.train_ready_pairs(cat)) == args.pairs, out

        print(f"\n{'':>6} {'cinectrl':>10} {'bare SDK':>10} {'ratio':>7}  target")
        print(f"{'push':>6} {ours_push:>9.2f}s {bare_push:>9.2f}s {ours_push / bare_push:>6.2f}x  < 30 s, <= 1.5x")
        print(f"{'pull':>6} {ours_pull:>9.2f}s {bare_pull:>9.2f}s {ours_pull / bare_pull:>6.2f}x  < 10 s, <= 1.5x")
    finally:
        server.stop(root / "bench.db")
        cat.close()


if __name__ == "__main__":
    main()
