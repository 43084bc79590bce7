"""Training data that travels: the catalog's training pairs as WebDataset tar shards, and the records that read
them back from a folder or any fsspec URL (`[data] shards`).

Export (`cinectrl catalog export --what dataset --format webdataset --output DIR`): the pairs `train run` would
read from the catalog (`train.data.records_from_catalog`, the same gate), one WebDataset sample per pair, written
by `webdataset.ShardWriter` into `dataset-NNNNNN.tar` shards bounded by `max_shard_bytes`:

    pairNNNNNN.source.mp4 / .target.mp4   the two clips, byte for byte as catalogued
    pairNNNNNN.depth.npz                  the source's true-depth sidecar, when it has one
    pairNNNNNN.json                       controls, scene, both passes' recorded slider poses (the trajectory
                                          `train.data.relative_trajectory` derives), per-frame slider offsets,
                                          frame count, provenance (catalog paths, sha256, session, review state)

and `manifest.json`: the catalog's revision (schema version + a hash of every exported pair's content), every
scene of the catalog (the train/eval split is decided over all of them, as from the catalog), the pairs left out
and why, and per shard its size, sha256 and each sample's member byte ranges.

Reading (`records_from_shards`): the manifest alone gives the records, in the catalog's order, so the train/eval
split, the shuffle and the losses are those of the catalog run. A record's clips are fetched when a DataLoader
worker first loads it: only that sample's byte ranges of its shard (fsspec range reads: local, http(s), s3, gcs,
...), written once into a local content-addressed cache. So every process and every worker reads only the
samples the sampler hands it, from whichever node it runs on, with no shared disk.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from . import data as D

FORMAT = "cinectrl-webdataset/1"
MANIFEST = "manifest.json"
PATTERN = "dataset-%06d.tar"
DEFAULT_MAX_SHARD_BYTES = 1 << 30
MEMBERS = ("source.mp4", "target.mp4", "depth.npz", "json")


class ShardError(ValueError):
    """Shards that cannot be read or written; the message names the URL or path and the fix."""


# ------------------------------------------------------------------------------------------------ export

def _sample(record: D.PairRecord, catalog: Any, frames: int) -> dict[str, Any]:
    meta = {
        "pair_id": record.pair_id, "scene": record.scene, "prompt": record.prompt, "kind": record.kind,
        "reviewed": record.reviewed, "controls": record.controls, "frames": frames,
        "source_poses_mm": record.source_poses_mm, "target_poses_mm": record.target_poses_mm,
        "slider_offsets_mm": ([float(t) - float(s) for s, t in zip(record.source_poses_mm, record.target_poses_mm)]
                              if record.source_poses_mm and record.target_poses_mm else None),
        "provenance": {"catalog": str(catalog.path), "source": str(record.source), "target": str(record.target),
                       "source_sha256": D.sha256_file(record.source), "target_sha256": D.sha256_file(record.target),
                       "depth": str(record.depth) if record.depth else None},
    }
    sample = {"__key__": f"pair{record.pair_id:06d}", "source.mp4": Path(record.source).read_bytes(),
              "target.mp4": Path(record.target).read_bytes(), "json": json.dumps(meta, sort_keys=True).encode()}
    if record.depth is not None:
        sample["depth.npz"] = Path(record.depth).read_bytes()
    return sample


#: a tar's end: two zero blocks, padded to tarfile's 10 KiB record
TAR_END = tarfile.RECORDSIZE


def _tar_bytes(sample: dict[str, Any]) -> int:
    """A sample's bytes in a tar: per member a header of up to 3 blocks (webdataset's float mtimes add a pax
    header) plus its data padded to 512."""
    return sum(3 * 512 + -(-len(v) // 512) * 512 for k, v in sample.items() if not k.startswith("__"))


def _index(tar_path: Path) -> list[dict[str, Any]]:
    """Each sample's members in a written shard: {key, members: {suffix: [data offset, size]}}."""
    samples: dict[str, dict[str, list[int]]] = {}
    with tarfile.open(tar_path) as tar:
        for info in tar:
            if info.isfile():
                key, _, suffix = info.name.partition(".")
                samples.setdefault(key, {})[suffix] = [info.offset_data, info.size]
    return [{"key": k, "members": v} for k, v in samples.items()]


def export_dataset(catalog_path: str | Path, out: str | Path, *, reviewed_only: bool = True,
                   max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES) -> dict[str, Any]:
    """Write the catalog's training pairs as shards + manifest.json into `out`; returns the manifest."""
    import webdataset as wds

    from capture.catalog import open_catalog
    from rigs.video import VideoError, probe

    if max_shard_bytes < 1 << 16:
        raise ShardError(f"max shard size {max_shard_bytes} bytes: give at least 65536 (64 KiB)")
    out = Path(out)
    if (out / MANIFEST).exists() or any(out.glob("dataset-*.tar")):
        raise ShardError(f"{out}: already holds an export (manifest.json or dataset-*.tar); give an empty folder")
    out.mkdir(parents=True, exist_ok=True)
    left_out: dict[str, str] = {}
    with open_catalog(catalog_path, readonly=True) as cat:
        try:
            records = D.records_from_catalog(cat, train_ready_only=reviewed_only, skipped=left_out)
        except D.PairWithoutControls as exc:
            raise ShardError(f"catalog {catalog_path}: {exc}") from None
        scenes = sorted(set(D.session_scenes(cat).values()))
        schema = cat.schema_version
        samples = []
        for record in records:
            try:
                frames = min(probe(record.source).frames, probe(record.target).frames)
            except (VideoError, OSError) as exc:
                left_out[f"pair {record.pair_id}"] = f"clip unreadable: {exc}"
                continue
            samples.append(_sample(record, cat, frames))
    digest = hashlib.sha256()
    written: list[str] = []
    with wds.ShardWriter(str(out / PATTERN), maxsize=max_shard_bytes, maxcount=10**9, verbose=0) as sink:
        in_shard = 0                 # tar bytes of the open shard (headers and padding included)
        for sample in samples:
            digest.update(sample["json"])
            # ShardWriter starts a new shard only once one is over the bound (counting data bytes only); start
            # it before instead, so a shard stays under the bound unless one pair alone is larger
            size = _tar_bytes(sample)
            if in_shard and in_shard + size + TAR_END > max_shard_bytes:
                sink.next_stream()
                in_shard = 0
            sink.write(sample)
            in_shard += size
    metas = {s["__key__"]: json.loads(s["json"]) for s in samples}
    shards = []
    for tar_path in sorted(out.glob("dataset-*.tar")):
        written.append(tar_path.name)
        index = _index(tar_path)
        for entry in index:
            entry["meta"] = metas[entry["key"]]
        shards.append({"name": tar_path.name, "bytes": tar_path.stat().st_size,
                       "sha256": D.sha256_file(tar_path), "samples": index})
    manifest = {"format": FORMAT, "catalog": str(Path(catalog_path).resolve()),
                "revision": {"schema_version": schema, "pairs_sha256": digest.hexdigest()},
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "reviewed_only": reviewed_only,
                "max_shard_bytes": max_shard_bytes, "pairs": len(samples), "scenes": scenes, "left_out": left_out,
                "shards": shards}
    tmp = out / f".{MANIFEST}.part"
    tmp.write_text(json.dumps(manifest, indent=1))
    tmp.replace(out / MANIFEST)
    return manifest


# ------------------------------------------------------------------------------------------------ reading

def _join(url: str, name: str) -> str:
    return url.rstrip("/") + "/" + name


def read_manifest(url: str) -> dict[str, Any]:
    """The export's manifest at `url` (a folder or fsspec URL holding manifest.json)."""
    import fsspec
    where = _join(url, MANIFEST)
    try:
        with fsspec.open(where, "rb") as fh:
            manifest = json.loads(fh.read())
    except FileNotFoundError:
        raise ShardError(f"[data] shards = {url}: no {MANIFEST} there; make one with `cinectrl catalog export "
                         "--what dataset --format webdataset --output DIR`") from None
    except (OSError, ValueError, ImportError) as exc:
        raise ShardError(f"[data] shards = {url}: cannot read {MANIFEST} ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ShardError(f"[data] shards = {url}: {MANIFEST} is not a {FORMAT} manifest")
    return manifest


@dataclass(frozen=True)
class ShardSample:
    """Where one pair's members are: the shard's URL and each member's [offset, size] in it."""
    url: str
    key: str
    members: dict[str, list[int]]
    cache: str
    shard_sha256: str = ""

    #: local names: the source's depth sits where `train.data.clip_depth` looks for it (<stem>.depth.npz)
    LOCAL = {"source.mp4": ".mp4", "target.mp4": ".target.mp4", "depth.npz": ".depth.npz"}

    def fetch(self, suffix: str) -> Path:
        """The member as a local file in the cache (read once by range, written atomically)."""
        import fsspec
        offset, size = self.members[suffix]
        name = hashlib.sha256(f"{self.url}|{self.shard_sha256}|{self.key}".encode()).hexdigest()[:32]
        local = Path(self.cache) / f"{name}{self.LOCAL[suffix]}"
        if local.is_file() and local.stat().st_size == size:
            return local
        local.parent.mkdir(parents=True, exist_ok=True)
        try:
            with fsspec.open(self.url, "rb") as fh:
                fh.seek(offset)
                payload = fh.read(size)
        except (OSError, ValueError) as exc:
            raise D.VideoError(f"{self.url} ({self.key}.{suffix}): cannot read ({exc})") from None
        if len(payload) != size:
            raise D.VideoError(f"{self.url} ({self.key}.{suffix}): {len(payload)} of {size} bytes (truncated shard)")
        tmp = local.with_name(f".{local.name}.{os.getpid()}.part")
        tmp.write_bytes(payload)
        tmp.replace(local)
        return local

    def materialise(self, record: D.PairRecord) -> D.PairRecord:
        """The record with local files (the source's depth sidecar beside it)."""
        depth = self.fetch("depth.npz") if "depth.npz" in self.members else None
        return replace(record, source=self.fetch("source.mp4"), target=self.fetch("target.mp4"), depth=depth,
                       shard=None)


def records_from_shards(url: str, cache_dir: str | Path) -> tuple[list[D.PairRecord], set[str], dict[str, Any]]:
    """(records in the catalog's order, every scene of the exported catalog, the manifest) of the export at
    `url`; clips are fetched into `cache_dir` when first loaded."""
    manifest = read_manifest(url)
    records = []
    for shard in manifest["shards"]:
        shard_url = _join(url, shard["name"])
        for sample in shard["samples"]:
            meta = sample["meta"]
            ref = ShardSample(shard_url, sample["key"], sample["members"], str(cache_dir), shard.get("sha256", ""))
            records.append(D.PairRecord(
                Path(f"{shard_url}#{sample['key']}.source.mp4"), Path(f"{shard_url}#{sample['key']}.target.mp4"),
                {k: float(v) for k, v in meta["controls"].items()}, meta["scene"], prompt=meta.get("prompt") or "",
                kind=meta.get("kind", "real"), pair_id=meta.get("pair_id"), reviewed=bool(meta.get("reviewed", True)),
                source_poses_mm=meta.get("source_poses_mm"), target_poses_mm=meta.get("target_poses_mm"),
                shard=ref, frames=int(meta.get("frames") or 0)))
    return records, set(manifest.get("scenes") or []), manifest


