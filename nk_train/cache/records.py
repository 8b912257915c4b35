"""Shard records: what a finished shard's files and values are.

A task builds its shard's record from the files it has just written (``file_record``); the
coordinator keeps it (``manifest.py``). Readers trust a cache file only through its record:
``RecordTable`` holds, compactly enough to be pickled into every DataLoader worker, each
file's size and each chunk's CRC32C; ``tools/check_cache.py --full`` also re-hashes files
(sha256) and decoded values (``data_sha256``).

Record (one per shard j)::

    rows: [r0, r1], data_sha256, nonfinite, depth_min, depth_max,
    normal_norm_min, normal_norm_max, valid_fraction (of the shard's map pixels),
    files: {array: {path, sha256, size, crc32c}}   crc32c: hex of the little-endian uint32
        stored at the end of each chunk (one per row for map arrays, one per file otherwise)
    images: {file name: [sha256, size, mtime_ns]}   (while the run is unfinished; folded into
        the manifest's image table at the end)
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .layout import MAP_ARRAYS, ROW_ARRAYS
from .shard_reader import stored_crcs

RECORD_KEYS = ('rows', 'data_sha256', 'files', 'nonfinite', 'depth_min', 'depth_max',
               'normal_norm_min', 'normal_norm_max', 'valid_fraction')
FILE_KEYS = ('path', 'sha256', 'size', 'crc32c')


def file_record(split_dir: Path, rel: str, num_rows: int, rows_per_shard: int | None
                ) -> dict[str, Any]:
    """The record of one written cache file (``rows_per_shard`` for a sharded map array)."""
    data = (Path(split_dir) / rel).read_bytes()
    crcs = stored_crcs(data, num_rows, rows_per_shard)
    return dict(path=rel, sha256=hashlib.sha256(data).hexdigest(), size=len(data),
                crc32c=crcs.astype('<u4').tobytes().hex())


def decode_crcs(hex_crcs: str) -> np.ndarray:
    return np.frombuffer(bytes.fromhex(hex_crcs), dtype='<u4')


def record_problem(rec: Mapping[str, Any] | None, rows: tuple[int, int]) -> str | None:
    """Why ``rec`` is not a usable record of the shard covering ``rows`` (None = it is)."""
    if rec is None:
        return 'no record'
    missing = [k for k in RECORD_KEYS if k not in rec]
    if missing:
        return f'record lacks {missing}'
    if list(rec['rows']) != list(rows):
        return f'record covers rows {rec["rows"]}, the layout {list(rows)}'
    files = rec['files']
    bad = [n for n in ROW_ARRAYS if not isinstance(files.get(n), dict)  # parsed JSON
           or any(k not in files[n] for k in FILE_KEYS)]
    if bad:
        return f'record lacks the files of {bad}'
    return None


@dataclass(frozen=True)
class RecordTable:
    """Expected size of every cache file and CRC32C of every chunk, from the records."""

    sizes: dict[str, np.ndarray]  # array -> (num_shards,) int64
    crcs: dict[str, np.ndarray]  # map array -> (num_rows,) uint32; other -> (num_shards,)

    @classmethod
    def from_records(cls, shards: Mapping[str, Mapping[str, Any]], num_rows: int,
                     num_shards: int) -> 'RecordTable':
        sizes = {n: np.zeros(num_shards, np.int64) for n in ROW_ARRAYS}
        crcs = {n: np.zeros(num_rows if n in MAP_ARRAYS else num_shards, np.uint32)
                for n in ROW_ARRAYS}
        for key, rec in shards.items():
            j = int(key)
            r0, r1 = rec['rows']
            for name in ROW_ARRAYS:
                f = rec['files'][name]
                sizes[name][j] = f['size']
                values = decode_crcs(f['crc32c'])
                if name in MAP_ARRAYS:
                    crcs[name][r0:r1] = values
                else:
                    crcs[name][j] = values[0]
        return cls(sizes=sizes, crcs=crcs)
