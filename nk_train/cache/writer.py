"""Write one shard's rows into the cache arrays and build its record from the written files.

Storage only: the values come from the geometric teacher's precompute task
(``nk_train.cmgc.cache_shard``). Each array's part of the shard is written in a single call
(the task owns the shard's files, ``layout.py``); the record (``records.py``) is built from
the bytes now on disk, with the sha256 of the image bytes the maps were computed from.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .layout import MAP_ARRAYS, ROW_ARRAYS, data_sha256, open_split_arrays, shard_file_keys
from .normal_codec import dequantize_normal
from .records import file_record


def write_shard(split_dir: Path, shard: int, rows: tuple[int, int],
                stored: Mapping[str, np.ndarray], images: Mapping[str, list]) -> dict[str, Any]:
    """Write ``stored`` (every array of ``ROW_ARRAYS``, rows ``rows``) as shard ``shard`` and
    return its record. Raises ``OSError`` when the file system refuses."""
    r0, r1 = rows
    arrays = open_split_arrays(split_dir, mode='r+')
    for name in ROW_ARRAYS:
        arrays[name][r0:r1] = stored[name]
    keys = shard_file_keys(arrays, shard)
    rows_per_shard = int(arrays[MAP_ARRAYS[0]].shards[0])
    files = {name: file_record(split_dir, keys[name], r1 - r0,
                               rows_per_shard if name in MAP_ARRAYS else None)
             for name in ROW_ARRAYS}
    norms = np.linalg.norm(dequantize_normal(stored['normal']), axis=1)
    return dict(
        rows=[r0, r1], data_sha256=data_sha256(stored), files=files, nonfinite=0,
        images=dict(images),
        depth_min=float(stored['depth'].min()), depth_max=float(stored['depth'].max()),
        normal_norm_min=float(norms.min()), normal_norm_max=float(norms.max()),
        valid_fraction=float(stored['valid'].mean()))
