"""Push 1,000 pairs and pull 1,000 verdicts through cinectrl vs the bare SDK calls for the same work.

Boots its own Label Studio (own venv, temp data dir; ~30-40 s first boot, not timed). The difference clips
(one small H.264 clip per pair, made once and kept) are measured on their own first: that is new media the bare
SDK has no counterpart for. Then, side by side in this run:
- push reference: `projects.create` + the Local Files storages + `projects.import_tasks` of the very task dicts
  cinectrl builds (built inside the timing, as the earlier version of this benchmark did), into a fresh project;
  cinectrl's push adds identifying the server, the project's settings, reconciling and the catalog bookkeeping.
- pull reference: `projects.exports.as_json` of the same annotated project; cinectrl's pull adds parsing, the
  reviews upsert, the gate over every pair and the settings check.
Pushes are repeated (catalog copies, fresh projects) interleaved with the reference and the medians compared;
the pull reference is timed before and after cinectrl's pull and averaged.
Targets: push < 30 s (difference clips included), pull < 10 s, each within 1.5x of its reference.

    .venv/bin/python benchmarks/review.py [--pairs 1000]
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks._results import write_result  # noqa: E402


def _fixtures():
    spec = importlib.util.spec_from_file_location("review_fixtures", REPO / "tests/annotate/conftest.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


REPEATS = 3   # pushes of the same 1,000 pairs (catalog copies), interleaved with the bare reference; medians


def _copy(cat, path: Path):
    """A copy of the catalog (same media, same difference clips) that has pushed nothing yet."""
    from capture.catalog import Catalog

    dst = sqlite3.connect(path)
    cat.conn.backup(dst)
    dst.close()
    return Catalog(path, durable=False)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=1000)
    args = ap.parse_args()
    from annotate import accounts, media, review, server
    from annotate.config import REVIEW_CONFIG

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
        pairs = review.review_pairs(cat)

        t = time.perf_counter()
        media.ensure_difference_clips(cat, pairs)
        diff_s = time.perf_counter() - t

        catalogs = [cat] + [_copy(cat, root / f"bench-copy{i}.db") for i in range(1, REPEATS)]
        bare_push, ours_push, build = [], [], []
        for i, copy in enumerate(catalogs):   # interleaved: the server's load drifts for both alike
            t = time.perf_counter()
            bare = ls.projects.create(title=f"bare {i}", label_config=REVIEW_CONFIG, maximum_annotations=1)
            for folder in (root / "media" / "bench", root / "media" / "bench" / "review"):
                ls.import_storage.local.create(project=bare.id, path=str(folder), title=folder.name,
                                               use_blob_urls=False)
            b = time.perf_counter()
            task_data = review._task_data(cat, pairs)   # the same payload, built the same way (clips ready)
            build.append(time.perf_counter() - b)
            ls.projects.import_tasks(id=bare.id, request=[{"data": task_data[p["pair_id"]]} for p in pairs],
                                     return_task_ids=True)
            bare_push.append(time.perf_counter() - t)
            t = time.perf_counter()
            res = review.push(copy, conn, overlap=1)
            ours_push.append(time.perf_counter() - t)
            assert res.added == args.pairs, res
        for copy in catalogs[1:]:
            copy.close()
        calls_only = statistics.median(b - c for b, c in zip(bare_push, build))
        bare_push, ours_push = statistics.median(bare_push), statistics.median(ours_push)

        me = server.identify(conn)
        accounts.add(cat, me, server.whoami(me)["email"], role="annotator")   # the admin annotates: it must count
        tasks = [row[0] for row in cat.conn.execute("SELECT task_id FROM ls_tasks ORDER BY pair_id")]
        project_id = cat.conn.execute("SELECT project_id FROM ls_projects WHERE kind = 'review'").fetchone()[0]
        verdict = [{"from_name": "verdict", "to_name": "video_a", "type": "choices", "value": {"choices": ["accept"]}},
                   {"from_name": "effect_clarity", "to_name": "video_b", "type": "rating", "value": {"rating": 4}},
                   {"from_name": "defects", "to_name": "video_b", "type": "timelinelabels", "id": "x",
                    "value": {"ranges": [{"start": 1, "end": 3}], "timelinelabels": ["defective"]}}]
        t = time.perf_counter()
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda tid: ls.annotations.create(id=tid, result=verdict, lead_time=2.5), tasks))
        print(f"annotating {len(tasks)} tasks through the SDK (setup) {time.perf_counter() - t:.1f} s")

        def bare_export() -> float:
            t = time.perf_counter()
            exported = ls.projects.exports.as_json(project_id)
            took = time.perf_counter() - t
            assert sum(len(x.get("annotations", [])) for x in exported) == args.pairs
            return took

        before = bare_export()
        t = time.perf_counter()
        out = review.pull(cat, conn)
        ours_pull = time.perf_counter() - t
        bare_pull = (before + bare_export()) / 2   # one before, one after: the same drift for both
        assert out.added == args.pairs and len(review.train_ready_pairs(cat)) == args.pairs, out
        t = time.perf_counter()
        again = review.pull(cat, conn)
        second_pull = time.perf_counter() - t
        assert again.nothing_changed

        push_total = diff_s + ours_push
        print(f"\n{'':>22} {'cinectrl':>10} {'bare SDK':>10} {'ratio':>7}  target")
        print(f"{'difference clips':>22} {diff_s:>9.2f}s {'-':>10} {'':>7}  ({diff_s / args.pairs * 1000:.1f} ms/pair)")
        print(f"{'push (clips ready)':>22} {ours_push:>9.2f}s {bare_push:>9.2f}s {ours_push / bare_push:>6.2f}x  "
              "<= 1.5x")
        print(f"{'  vs SDK calls alone':>22} {ours_push:>9.2f}s {calls_only:>9.2f}s {ours_push / calls_only:>6.2f}x  "
              "(payload prebuilt: information)")
        print(f"{'push incl. clips':>22} {push_total:>9.2f}s {'':>10} {'':>7}  < 30 s")
        print(f"{'pull':>22} {ours_pull:>9.2f}s {bare_pull:>9.2f}s {ours_pull / bare_pull:>6.2f}x  < 10 s, <= 1.5x")
        print(f"{'pull, nothing new':>22} {second_pull:>9.2f}s")
        write_result("review", {
            "pairs": args.pairs,
            "difference_clips_s": round(diff_s, 3), "difference_clip_ms_per_pair": round(diff_s / args.pairs * 1e3, 2),
            "push_s": round(ours_push, 3), "push_bare_sdk_s": round(bare_push, 3),
            "push_ratio": round(ours_push / bare_push, 3), "push_including_difference_clips_s": round(push_total, 3),
            "push_bare_sdk_calls_only_s": round(calls_only, 3),
            "push_ratio_vs_calls_only": round(ours_push / calls_only, 3),
            "pull_s": round(ours_pull, 3), "pull_bare_sdk_s": round(bare_pull, 3),
            "pull_ratio": round(ours_pull / bare_pull, 3), "pull_nothing_new_s": round(second_pull, 3),
            "targets": {"push_including_difference_clips_s": "< 30", "pull_s": "< 10", "push_ratio": "<= 1.5",
                        "pull_ratio": "<= 1.5"},
            "met": push_total < 30 and ours_pull < 10 and ours_push / bare_push <= 1.5 and ours_pull / bare_pull <= 1.5,
        }, notes=f"1,000 pairs of 64x64x12-frame H.264 clips; same server, same run; push medians of {REPEATS} "
                 "interleaved runs; 2-core machine shared with other jobs")
    finally:
        server.stop(root / "bench.db")
        cat.close()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
