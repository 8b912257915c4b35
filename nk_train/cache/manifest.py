"""``manifest.json`` of a split cache: fingerprint + inputs, layout, sample ids, shard records.

Written atomically (temporary file + ``os.replace``) by the single coordinating process, after
a task has finished writing and hashing its shard. A cache is complete only when every shard
has a record; a shard without one is redone by ``--resume``.

Schema (``format_version`` 1)::

    format, format_version, split, fingerprint, fingerprint_inputs,
    layout: {num_instances, num_seeds, num_rows, rows_per_shard, num_shards, map_size,
             arrays: {name: {row_shape, dtype}}, blosc}
    sample_ids: [id of instance n, n = 0..N-1]
    excluded: [[annotation id, reason], ...]   (dropped by the dataset's filtering rules)
    shards: {"j": {rows: [start, stop], data_sha256, files: {relpath: sha256},
                   nonfinite, depth_min, depth_max, normal_norm_min, normal_norm_max}}
    complete: bool, created, updated
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from .layout import FORMAT_NAME, FORMAT_VERSION, MANIFEST_NAME, shard_ranges

RECORD_KEYS = ('rows', 'data_sha256', 'files', 'nonfinite', 'depth_min', 'depth_max',
               'normal_norm_min', 'normal_norm_max')


class ManifestError(RuntimeError):
    """The manifest is missing, unreadable or of another format."""


def manifest_path(split_dir: Path) -> Path:
    return Path(split_dir) / MANIFEST_NAME


def write_json_atomic(path: Path, obj: Any) -> None:
    tmp = path.with_name(f'.{path.name}.{os.getpid()}.tmp')
    with open(tmp, 'w') as f:
        json.dump(obj, f, indent=1, sort_keys=True, allow_nan=False)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_manifest(split_dir: Path) -> dict[str, Any]:
    path = manifest_path(split_dir)
    if not path.is_file():
        raise ManifestError(f'no cache manifest at {path}: run precompute/geo_cache.py first')
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ManifestError(f'cannot read cache manifest {path}: {err}') from err
    if manifest.get('format') != FORMAT_NAME or manifest.get('format_version') != FORMAT_VERSION:
        raise ManifestError(
            f'{path}: format {manifest.get("format")!r} v{manifest.get("format_version")}, '
            f'expected {FORMAT_NAME!r} v{FORMAT_VERSION}; rebuild with --overwrite')
    return manifest


def new_manifest(split: str, fingerprint: str, inputs: dict, layout: dict,
                 sample_ids: list[int], excluded: list) -> dict[str, Any]:
    now = time.strftime('%Y-%m-%dT%H:%M:%S%z')
    return dict(format=FORMAT_NAME, format_version=FORMAT_VERSION, split=split,
                fingerprint=fingerprint, fingerprint_inputs=inputs, layout=layout,
                sample_ids=[int(i) for i in sample_ids],
                excluded=[[int(i), str(r)] for i, r in excluded],
                shards={}, complete=False, created=now, updated=now)


def missing_shards(manifest: dict[str, Any]) -> list[int]:
    """Shards without a record whose row range matches the layout."""
    layout = manifest['layout']
    ranges = shard_ranges(layout['num_rows'], layout['rows_per_shard'])
    out = []
    for j, (r0, r1) in enumerate(ranges):
        rec = manifest['shards'].get(str(j))
        if rec is None or list(rec.get('rows', [])) != [r0, r1] or \
                any(k not in rec for k in RECORD_KEYS):
            out.append(j)
    return out


def add_record(split_dir: Path, manifest: dict[str, Any], shard: int,
               record: dict[str, Any]) -> None:
    """Add a shard record and rewrite the manifest atomically."""
    manifest['shards'][str(shard)] = {k: record[k] for k in RECORD_KEYS}
    manifest['complete'] = not missing_shards(manifest)
    manifest['updated'] = time.strftime('%Y-%m-%dT%H:%M:%S%z')
    write_json_atomic(manifest_path(split_dir), manifest)
