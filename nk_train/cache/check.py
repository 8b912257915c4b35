"""Integrity checks of a split cache (``tools/check_cache.py``).

Three levels, costs measured in ``benchmarks/results/geo_cache_scale.json``.
Quick (nothing per shard: one manifest parse, the record tables loaded and hashed, one
``stat`` per distinct image): manifest readable and of this format, fingerprint
self-consistent and equal to the config's, every image's size and mtime equal to the recorded
ones or its bytes' hash unchanged, sample ids and layout consistent, every shard recorded,
the record files of the recorded sizes and hashes, a shard with a valid pixel, no temporaries
of interrupted writes in the split directory or the journal, no journal left beside a
finished manifest. Files (linear, one ``stat`` per shard file): additionally every shard file
present with its recorded size (a truncated or 0-byte file is found here; training checks
the same when it first touches a shard). Full (linear in the cache's bytes): additionally read
``records.jsonl`` and compare it with the record tables, re-hash every shard file and compare
every chunk's CRC32C with its record, decode
every row (a CRC32C failure names the row), re-hash the decoded values, count NaN/Inf, check
the depth range and that normals have unit length, compare sample ids with the dataset's,
re-hash every image, and look for zarr's temporaries beside every chunk file.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .fingerprint import cache_differences
from .instances import InstanceList
from .layout import (MAP_ARRAYS, RECORD_FILES, ROW_ARRAYS, array_specs, data_sha256,
                     open_split_arrays, shard_file_keys, shard_ranges)
from .manifest import (ManifestError, journal_images, leftovers, load_manifest,
                       load_record_table, missing_shards, read_journal, record_file_problems,
                       shard_records)
from .records import RecordTable
from .normal_codec import dequantize_normal
from .shard_reader import ShardFileError, stored_crcs


@dataclass(frozen=True)
class Problem:
    where: str  # 'manifest', 'shard 3', 'row 17 (sample 42, k 1)', ...
    what: str

    def __str__(self) -> str:
        return f'{self.where}: {self.what}'


def check_split_cache(split_dir: str | Path, expected_inputs: Mapping[str, Any],
                      instances: InstanceList, files: bool = False, full: bool = False,
                      ignore_keys: Sequence[str] = (),
                      expected_ids: Sequence[int] | None = None,
                      depth_range: tuple[float, float] | None = None,
                      normal_tol: float = 0.02) -> list[Problem]:
    """Every problem found (empty list = the cache is sound). ``expected_inputs`` and
    ``instances`` describe the split as the config does now. ``files``: also every shard
    file's presence and size (one ``stat`` each); ``full`` implies it."""
    split_dir = Path(split_dir)
    problems: list[Problem] = []
    try:
        manifest = load_manifest(split_dir)
        complete = manifest['complete']
        records = None if complete else read_journal(split_dir)  # a finished one's: --full
        recorded_images = None if complete else journal_images(records)
    except ManifestError as err:
        return [Problem('manifest', str(err))]

    problems += [Problem('stale', line) for line in cache_differences(
        manifest, expected_inputs, instances, ignore_keys, recorded_images, rehash_images=full)]
    problems += _leftover_problems(split_dir, manifest, full)
    layout = manifest['layout']
    ids = np.asarray(manifest['sample_ids'], dtype=np.int64)
    missing = [] if complete else missing_shards(layout, records)  # the fold checked them
    problems += _layout_problems(layout, ids, expected_ids, missing)
    try:
        table = _record_table(split_dir, manifest, records, missing)
    except ManifestError as err:
        return problems + [Problem('records', str(err))]
    try:
        arrays = open_split_arrays(split_dir, mode='r')
    except Exception as err:  # noqa: BLE001 - any failure to open is a finding
        problems.append(Problem('arrays', f'cannot open: {err}'))
        return problems
    shapes = _array_problems(arrays, layout)
    if shapes:
        return problems + shapes

    ranges = shard_ranges(layout['num_rows'], layout['rows_per_shard'])
    usable = sorted(set(range(len(ranges))) - set(missing))
    for j in usable if files or full else ():
        problems += _file_sizes(split_dir, arrays, table, j)
    if usable and not missing and not table.valid_fraction.any():
        # CMGC would silently add nothing: every limb falls outside the validity mask
        problems.append(Problem('valid', 'no map pixel of any shard is valid: the teacher\'s '
                                         'foreground rule (teacher.foreground) found no '
                                         'foreground, or every crop lies outside its image'))
    if full and complete:
        records, found = _finished_records(split_dir, manifest, table)
        problems += found
    if full and records is not None:
        for j in usable:
            r0, r1 = ranges[j]
            problems += _full_check_shard(split_dir, arrays, records[str(j)], j, r0, r1,
                                          ids, layout['num_seeds'], layout['rows_per_shard'],
                                          depth_range, normal_tol)
    return problems


def _leftover_problems(split_dir: Path, manifest: Mapping[str, Any], deep: bool
                       ) -> list[Problem]:
    return [Problem('files', f'leftover of an interrupted write: {path.relative_to(split_dir)}'
                             ' (precompute --resume removes it)')
            for path in leftovers(split_dir, manifest, deep)]


def _finished_records(split_dir: Path, manifest: Mapping[str, Any], table: RecordTable
                      ) -> tuple[dict | None, list[Problem]]:
    """``records.jsonl`` of a finished cache (None if unusable) and its disagreements with
    the record tables."""
    layout = manifest['layout']
    try:
        records = shard_records(split_dir, manifest)
    except ManifestError as err:
        return None, [Problem('records', str(err))]
    if missing_shards(layout, records) or not table.same_as(RecordTable.from_records(
            records, layout['num_rows'], layout['num_shards'])):
        return None, [Problem('records', f'{RECORD_FILES["records"]} disagrees with '
                                         f'{RECORD_FILES["shard_table"]} / '
                                         f'{RECORD_FILES["row_table"]}; rebuild with '
                                         '--overwrite')]
    return records, []


def _record_table(split_dir: Path, manifest: Mapping[str, Any],
                  records: Mapping[str, Any] | None, missing: list[int]) -> RecordTable:
    """The sizes and checksums to check files against: a finished cache's record tables
    (their sizes ``stat``ed, their bytes hashed), or the usable journal records."""
    layout = manifest['layout']
    if not manifest['complete']:
        usable = {j: rec for j, rec in records.items() if int(j) not in missing}
        return RecordTable.from_records(usable, layout['num_rows'], layout['num_shards'])
    sizes = record_file_problems(split_dir, manifest)
    if sizes:
        raise ManifestError('record files do not match the manifest: ' + '; '.join(sizes))
    return load_record_table(split_dir, manifest)


def _layout_problems(layout: Mapping[str, Any], ids: np.ndarray,
                     expected_ids: Sequence[int] | None, missing: list[int]) -> list[Problem]:
    """The manifest's rows, sample ids and records against each other and the dataset."""
    problems = []
    num_seeds, num_rows = layout['num_seeds'], layout['num_rows']
    if len(ids) * num_seeds != num_rows:
        problems.append(Problem('manifest', f'{len(ids)} sample ids x K={num_seeds} != '
                                            f'{num_rows} rows'))
    if len(set(ids.tolist())) != len(ids):
        problems.append(Problem('manifest', 'duplicate sample ids'))
    if expected_ids is not None and list(expected_ids) != ids.tolist():
        problems.append(Problem('sample ids', _id_mismatch(ids.tolist(), list(expected_ids))))
    if missing:
        problems.append(Problem('completeness', f'{len(missing)} of {layout["num_shards"]} '
                                                f'shards have no record: {missing[:20]}'))
    return problems


def _array_problems(arrays: Mapping[str, Any], layout: Mapping[str, Any]) -> list[Problem]:
    """Each array's shape and dtype against the manifest's layout."""
    specs = array_specs(tuple(layout['map_size']), layout['arrays']['depth']['dtype'],
                        layout['arrays']['normal']['dtype'])
    problems = []
    for name, (row_shape, dtype) in specs.items():
        arr = arrays[name]
        if arr.shape != (layout['num_rows'], *row_shape) or str(arr.dtype) != dtype:
            problems.append(Problem(f'array {name}', f'shape {arr.shape} dtype {arr.dtype}, '
                                                     f'expected {(layout["num_rows"], *row_shape)} '
                                                     f'{dtype}'))
    return problems


def _file_sizes(split_dir: Path, arrays: Mapping[str, Any], table: RecordTable, j: int
                ) -> list[Problem]:
    problems = []
    for name, rel in shard_file_keys(arrays, j).items():
        try:
            size = os.stat(os.path.join(split_dir, rel)).st_size
        except FileNotFoundError:
            problems.append(Problem(f'shard {j}', f'recorded but file {rel} is missing'))
            continue
        if size != table.sizes[name][j]:
            problems.append(Problem(f'shard {j}', f'file {rel} has {size} bytes, its record '
                                                  f'{table.sizes[name][j]} (truncated or '
                                                  'replaced)'))
    return problems


def _id_mismatch(cached: list[int], expected: list[int]) -> str:
    if len(cached) != len(expected):
        return f'cache has {len(cached)} instances, the dataset {len(expected)}'
    n = next(i for i, (a, b) in enumerate(zip(cached, expected)) if a != b)
    return f'first difference at instance {n}: cache id {cached[n]}, dataset id {expected[n]}'


def _where(r: int, ids: np.ndarray, num_seeds: int) -> str:
    n, k = divmod(r, num_seeds)
    sid = int(ids[n]) if n < len(ids) else '?'
    return f'row {r} (sample {sid}, k {k})'


def _file_bytes_problems(split_dir: Path, rec: Mapping[str, Any], j: int, num_rows: int,
                         rows_per_shard: int) -> list[Problem]:
    """Each file's sha256 and stored chunk checksums against the record."""
    problems = []
    for name, f in rec['files'].items():
        path = split_dir / f['path']
        if not path.is_file():
            continue  # reported by the quick check
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != f['sha256']:
            problems.append(Problem(f'shard {j}', f'file {f["path"]} differs from its '
                                                  'recorded hash'))
        try:
            crcs = stored_crcs(data, num_rows, rows_per_shard if name in MAP_ARRAYS else None)
        except (ShardFileError, ValueError) as err:
            problems.append(Problem(f'shard {j}', f'file {f["path"]}: {err}'))
            continue
        if crcs.astype('<u4').tobytes().hex() != f['crc32c']:
            problems.append(Problem(f'shard {j}', f'file {f["path"]}: chunk checksums differ '
                                                  'from the record'))
    return problems


def _full_check_shard(split_dir: Path, arrays: dict, rec: dict, j: int, r0: int, r1: int,
                      ids: np.ndarray, num_seeds: int, rows_per_shard: int,
                      depth_range: tuple[float, float] | None, normal_tol: float
                      ) -> list[Problem]:
    problems = _file_bytes_problems(split_dir, rec, j, r1 - r0, rows_per_shard)
    stored, unreadable = _read_shard(arrays, j, r0, r1, ids, num_seeds)
    if unreadable:
        return problems + unreadable
    if data_sha256(stored) != rec['data_sha256']:
        problems.append(Problem(f'shard {j}', 'decoded values differ from the recorded hash'))
    want_ids = np.repeat(ids, num_seeds)[r0:r1]
    want_ks = np.arange(r0, r1) % num_seeds
    for i in np.flatnonzero((stored['sample_id'] != want_ids) | (stored['seed_k'] != want_ks)):
        problems.append(Problem(_where(r0 + int(i), ids, num_seeds),
                                f'stored id {stored["sample_id"][i]}, k {stored["seed_k"][i]}'))
    depth = stored['depth'].astype(np.float32)
    normal = dequantize_normal(stored['normal'])
    norms = np.linalg.norm(normal, axis=1)
    for i in range(r1 - r0):
        where = _where(r0 + i, ids, num_seeds)
        nonfinite = int((~np.isfinite(depth[i])).sum() + (~np.isfinite(normal[i])).sum() +
                        (~np.isfinite(stored['affine'][i])).sum())
        if nonfinite:
            problems.append(Problem(where, f'{nonfinite} NaN/Inf values'))
            continue
        if depth_range is not None and (depth[i].min() < depth_range[0]
                                        or depth[i].max() > depth_range[1]):
            problems.append(Problem(where, f'depth range [{depth[i].min():.4g}, '
                                           f'{depth[i].max():.4g}] outside {list(depth_range)}'))
        if not np.isin(stored['valid'][i], (0, 1)).all():
            problems.append(Problem(where, 'validity mask holds values other than 0 and 1'))
        dev = float(np.abs(norms[i] - 1.0).max())
        if dev > normal_tol:
            problems.append(Problem(where, f'normal length deviates from 1 by {dev:.3g} '
                                           f'(> {normal_tol})'))
    if np.isfinite(depth).all() and (depth.min() < rec['depth_min'] or
                                      depth.max() > rec['depth_max']):
        problems.append(Problem(f'shard {j}', 'depth outside the recorded min/max'))
    return problems


def _read_shard(arrays: dict, j: int, r0: int, r1: int, ids: np.ndarray, num_seeds: int
                ) -> tuple[dict[str, np.ndarray], list[Problem]]:
    """Rows r0..r1 of every array decoded, or the problems of what could not be (a CRC32C
    failure of a map row names that row)."""
    problems = []
    values: dict[str, Any] = {}
    for name in ROW_ARRAYS:
        if name in MAP_ARRAYS:
            continue
        try:
            values[name] = arrays[name][r0:r1]
        except Exception as err:  # noqa: BLE001 - a decode failure is the finding
            problems.append(Problem(f'shard {j}', f'{name} rows {r0}..{r1 - 1} unreadable: '
                                                  f'{type(err).__name__}: {err}'))
    for name in MAP_ARRAYS:
        rows = []
        for r in range(r0, r1):
            try:
                rows.append(arrays[name][r])
            except Exception as err:  # noqa: BLE001
                problems.append(Problem(_where(r, ids, num_seeds),
                                        f'{name} chunk unreadable: {type(err).__name__}: {err}'))
        values[name] = rows
    return {name: np.asarray(v) for name, v in values.items()}, problems
