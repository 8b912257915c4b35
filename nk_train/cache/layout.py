"""The one on-disk schema of the geometric cache (Zarr v3), used by writer, reader and checks.

``<root>/<split>/`` is a Zarr v3 group; R = N * K rows, row ``n * K + k`` is view k of
instance n (instances in ``nk_train.cache.instances`` order)::

    depth      (R, 1, mh, mw)  float16|float32  chunk = 1 row, shard = rows_per_shard rows
    normal     (R, 3, mh, mw)  int8 (n * 127) | float16 | float32 (normal_codec.py), like depth
    valid      (R, 1, mh, mw)  uint8 {0, 1}: teacher foreground inside the image, chunked like
                               depth (nk_train.cmgc.teacher_maps)
    affine     (R, 2, 3)       float64  original image -> student crop (UDP, flip folded in)
    sample_id  (R,)            int64    COCO annotation id of the row's instance
    seed_k     (R,)            int32    the row's view index k
    manifest.json              fingerprint, its inputs, layout, sample ids, images, and once
                               complete the sha256 and size of the three record files below
    records/<j>.json           shard j's record while a precompute run is unfinished
    records.jsonl              every shard's record, one line per shard (``--full`` reads it)
    record_table_shards.npy    per shard: each file's size, the small arrays' CRC32C, the
                               valid fraction (what readers and the quick check need)
    record_table_rows.npy      per row: each map chunk's CRC32C

Map pixel (u, v) sits at crop pixel (u (w-1)/(mw-1), v (h-1)/(mh-1)) (UDP: corner pixels
aligned), i.e. ``rescale_affine(affine, input_size, map_size)`` maps image -> map pixels.
Every chunk is Blosc-compressed and then protected by a CRC32C checksum (Blosc alone reads
flipped bytes back silently). ``affine``/``sample_id``/``seed_k`` have one chunk per shard
range, so each precompute task owns whole files: shard j is written by one task, in one call
per array (two writers in one shard lose data, zarr-python #3514/#3682). Every chunk is
written, also one whose values all equal the fill value (zarr skips those by default and does
not store that setting in the metadata, so the writer asks for it each time it opens the
arrays): an absent chunk or shard file therefore always means a lost one.

Arrays in ``MAP_ARRAYS`` are sharded (one inner chunk per row, the shard index at the file's
end); the others hold one chunk per shard range. A new per-row array is one more entry in
``array_specs`` (and in ``MAP_ARRAYS`` if it is a map), read and checked like the others.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import zarr
from zarr.codecs import BloscCodec, Crc32cCodec

FORMAT_NAME = 'nk-sapiens-geo-cache'
# 2: per-file sizes and chunk checksums in the shard records, per-image hashes, the record
# journal in records/ (version 1 caches are refused: rebuild them with --overwrite).
# 3: the validity mask (valid), relative-depth teachers, normals in the loss frame.
# 4: the finished manifest no longer holds the records (records.jsonl and the two record
# tables do), so opening a cache and the quick check parse nothing per shard.
FORMAT_VERSION = 4
MANIFEST_NAME = 'manifest.json'
RECORDS_DIR = 'records'
RECORD_FILES = dict(records='records.jsonl', shard_table='record_table_shards.npy',
                    row_table='record_table_rows.npy')
TEMPORARY_SUFFIXES = ('.partial', '.tmp')
MAP_ARRAYS = ('depth', 'normal', 'valid')  # sharded, one inner chunk per row
ROW_ARRAYS = ('sample_id', 'seed_k', 'affine', *MAP_ARRAYS)
SMALL_ARRAYS = tuple(n for n in ROW_ARRAYS if n not in MAP_ARRAYS)  # one chunk per shard


def array_specs(map_size: tuple[int, int], depth_dtype: str, normal_encoding: str
                ) -> dict[str, tuple[tuple[int, ...], str]]:
    """Per-row shape and dtype of every array."""
    mw, mh = map_size
    return dict(
        sample_id=((), 'int64'),
        seed_k=((), 'int32'),
        affine=((2, 3), 'float64'),
        depth=((1, mh, mw), depth_dtype),
        normal=((3, mh, mw), normal_encoding),
        valid=((1, mh, mw), 'uint8'),
    )


def shard_ranges(num_rows: int, rows_per_shard: int) -> list[tuple[int, int]]:
    return [(r, min(r + rows_per_shard, num_rows)) for r in range(0, num_rows, rows_per_shard)]


def create_split_arrays(split_dir: Path, num_rows: int, map_size: tuple[int, int],
                        depth_dtype: str, normal_encoding: str, rows_per_shard: int,
                        blosc: Mapping[str, Any]) -> zarr.Group:
    """Create the group and its (empty) arrays; metadata is written once, here."""
    group = zarr.open_group(str(split_dir), mode='w', zarr_format=3)
    specs = array_specs(map_size, depth_dtype, normal_encoding)
    for name, (row_shape, dtype) in specs.items():
        typesize = np.dtype(dtype).itemsize
        compressors = [BloscCodec(typesize=typesize, **dict(blosc)), Crc32cCodec()]
        shape = (num_rows, *row_shape)
        if name in MAP_ARRAYS:
            chunks, shards = (1, *row_shape), (rows_per_shard, *row_shape)
        else:
            chunks, shards = (rows_per_shard, *row_shape), None
        group.create_array(name, shape=shape, chunks=chunks, shards=shards, dtype=dtype,
                           compressors=compressors, fill_value=0)
    return group


def open_split_arrays(split_dir: Path, mode: str = 'r') -> dict[str, zarr.Array]:
    """The row arrays; opened for writing (``mode != 'r'``) they write every chunk."""
    group = zarr.open_group(str(split_dir), mode=mode, zarr_format=3)
    missing = [n for n in ROW_ARRAYS if n not in group]
    if missing:
        raise FileNotFoundError(f'{split_dir}: cache arrays missing: {missing}')
    arrays = {name: group[name] for name in ROW_ARRAYS}
    if mode != 'r':
        arrays = {name: arr.with_config({'write_empty_chunks': True})
                  for name, arr in arrays.items()}
    return arrays


def shard_file_keys(arrays: Mapping[str, zarr.Array], shard: int) -> dict[str, str]:
    """Relative paths (under the split dir) of the files that hold shard ``shard``."""
    keys = {}
    for name, arr in arrays.items():
        coords = (shard,) + (0,) * (arr.ndim - 1)
        keys[name] = f'{name}/{arr.metadata.encode_chunk_key(coords)}'
    return keys


def data_sha256(rows: Mapping[str, np.ndarray]) -> str:
    """Hash of decoded values (independent of codec versions): for each array in
    ``ROW_ARRAYS`` order, its name, little-endian dtype, shape and C-order bytes."""
    h = hashlib.sha256()
    for name in ROW_ARRAYS:
        a = np.ascontiguousarray(rows[name])
        a = a.astype(a.dtype.newbyteorder('<'), copy=False)
        h.update(f'{name}|{a.dtype.str}|{a.shape}|'.encode())
        h.update(a.tobytes())
    return h.hexdigest()


def stray_partial_files(split_dir: Path, deep: bool = True) -> list[Path]:
    """Leftovers of interrupted writes: our ``*.tmp`` files (in the split directory and
    ``records/``, always looked for) and zarr's ``*.partial`` files, which sit next to any
    chunk file, so finding them all walks the whole tree (``deep``: linear in the number of
    shards)."""
    split_dir = Path(split_dir)
    if deep:
        return [Path(root) / name for root, _, names in os.walk(split_dir) for name in names
                if name.endswith(TEMPORARY_SUFFIXES)]
    folders = [d for d in (split_dir, split_dir / RECORDS_DIR) if d.is_dir()]
    return [Path(e.path) for d in folders for e in os.scandir(d)
            if e.name.endswith(TEMPORARY_SUFFIXES)]


def layout_dict(num_instances: int, num_seeds: int, rows_per_shard: int,
                map_size: tuple[int, int], depth_dtype: str, normal_encoding: str,
                blosc: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest's ``layout`` section (how values are stored, not what they are)."""
    num_rows = num_instances * num_seeds
    specs = array_specs(map_size, depth_dtype, normal_encoding)
    return dict(num_instances=num_instances, num_seeds=num_seeds, num_rows=num_rows,
                rows_per_shard=rows_per_shard,
                num_shards=len(shard_ranges(num_rows, rows_per_shard)),
                map_size=list(map_size),
                arrays={n: dict(row_shape=list(s), dtype=d) for n, (s, d) in specs.items()},
                blosc=dict(blosc), chunk_checksum='crc32c')
