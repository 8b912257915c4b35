"""Shard records: what a finished shard's files and values are.

A task builds its shard's record from the files it has just written (``file_record``); the
coordinator keeps it (``manifest.py``: ``records/<j>.json`` while the run is unfinished,
``records.jsonl`` after). Readers trust a cache file only through its record: ``RecordTable``
holds, compactly enough to be pickled into every DataLoader worker, each file's size and each
chunk's CRC32C; ``tools/check_cache.py --full`` also re-hashes files (sha256) and decoded
values (``data_sha256``).

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
    """What a reader needs from the records, as arrays: each cache file's expected size, each
    chunk's CRC32C, each shard's valid fraction. Stored beside the manifest as two ``.npy``
    tables (``RECORD_FILES``), so opening a cache parses nothing per shard."""

    sizes: dict[str, np.ndarray]  # array -> (num_shards,) int64
    crcs: dict[str, np.ndarray]  # map array -> (num_rows,) uint32; other -> (num_shards,)
    valid_fraction: np.ndarray  # (num_shards,) float64

    @classmethod
    def from_records(cls, shards: Mapping[str, Mapping[str, Any]], num_rows: int,
                     num_shards: int) -> 'RecordTable':
        """The table of ``shards`` (a subset leaves zeros for the shards it lacks)."""
        sizes = {n: np.zeros(num_shards, np.int64) for n in ROW_ARRAYS}
        crcs = {n: np.zeros(num_rows if n in MAP_ARRAYS else num_shards, np.uint32)
                for n in ROW_ARRAYS}
        valid_fraction = np.zeros(num_shards, np.float64)
        for key, rec in shards.items():
            j = int(key)
            r0, r1 = rec['rows']
            valid_fraction[j] = rec['valid_fraction']
            for name in ROW_ARRAYS:
                f = rec['files'][name]
                sizes[name][j] = f['size']
                values = decode_crcs(f['crc32c'])
                if name in MAP_ARRAYS:
                    crcs[name][r0:r1] = values
                else:
                    crcs[name][j] = values[0]
        return cls(sizes=sizes, crcs=crcs, valid_fraction=valid_fraction)

    def to_tables(self) -> dict[str, np.ndarray]:
        """The per-shard and per-row structured arrays (little-endian, fixed field order)."""
        shard_table = np.zeros(len(self.valid_fraction), dtype=SHARD_TABLE_DTYPE)
        row_table = np.zeros(len(self.crcs[MAP_ARRAYS[0]]), dtype=ROW_TABLE_DTYPE)
        for name in ROW_ARRAYS:
            shard_table[f'size_{name}'] = self.sizes[name]
            (row_table if name in MAP_ARRAYS else shard_table)[f'crc_{name}'] = self.crcs[name]
        shard_table['valid_fraction'] = self.valid_fraction
        return dict(shard_table=shard_table, row_table=row_table)

    @classmethod
    def from_tables(cls, shard_table: np.ndarray, row_table: np.ndarray) -> 'RecordTable':
        def column(table: np.ndarray, field: str) -> np.ndarray:
            return np.ascontiguousarray(table[field])  # a compact array, not a strided view

        sizes = {n: column(shard_table, f'size_{n}') for n in ROW_ARRAYS}
        crcs = {n: column(row_table if n in MAP_ARRAYS else shard_table, f'crc_{n}')
                for n in ROW_ARRAYS}
        return cls(sizes=sizes, crcs=crcs,
                   valid_fraction=column(shard_table, 'valid_fraction'))

    def same_as(self, other: 'RecordTable') -> bool:
        return (all(np.array_equal(self.sizes[n], other.sizes[n]) and
                    np.array_equal(self.crcs[n], other.crcs[n]) for n in ROW_ARRAYS)
                and np.array_equal(self.valid_fraction, other.valid_fraction))


SHARD_TABLE_DTYPE = np.dtype([(f'size_{n}', '<i8') for n in ROW_ARRAYS] +
                             [(f'crc_{n}', '<u4') for n in ROW_ARRAYS if n not in MAP_ARRAYS] +
                             [('valid_fraction', '<f8')])
ROW_TABLE_DTYPE = np.dtype([(f'crc_{n}', '<u4') for n in MAP_ARRAYS])
