"""Integrity checks of a split cache (``tools/check_cache.py``).

Quick: manifest and arrays readable and consistent with the layout, fingerprint self-consistent
and (given a config) equal to the config's, every shard recorded, no leftovers of interrupted
writes. Full: additionally re-hash every shard file against its record, decode every row (a
CRC32C failure names the row), re-hash the decoded values, count NaN/Inf, check the depth range
and that normals have unit length, and compare sample ids with the dataset's.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..utils import sha256_file
from .fingerprint import diff_inputs, fingerprint
from .layout import (NORMAL_INT8_SCALE, ROW_ARRAYS, array_specs, data_sha256,
                     open_split_arrays, shard_file_keys, shard_ranges,
                     stray_partial_files)
from .manifest import ManifestError, load_manifest, missing_shards


@dataclass(frozen=True)
class Problem:
    where: str  # 'manifest', 'shard 3', 'row 17 (sample 42, k 1)', ...
    what: str

    def __str__(self) -> str:
        return f'{self.where}: {self.what}'


def check_split_cache(split_dir: str | Path, full: bool = False,
                      expected_inputs: Mapping[str, Any] | None = None,
                      ignore_keys: Sequence[str] = (),
                      expected_ids: Sequence[int] | None = None,
                      depth_range: tuple[float, float] | None = None,
                      normal_tol: float = 0.02) -> list[Problem]:
    """Every problem found (empty list = the cache is sound)."""
    split_dir = Path(split_dir)
    problems: list[Problem] = []
    try:
        manifest = load_manifest(split_dir)
    except ManifestError as err:
        return [Problem('manifest', str(err))]

    if fingerprint(manifest['fingerprint_inputs']) != manifest['fingerprint']:
        problems.append(Problem('manifest', 'fingerprint does not match its stored inputs'))
    if expected_inputs is not None:
        for line in diff_inputs(manifest['fingerprint_inputs'], expected_inputs, ignore_keys):
            problems.append(Problem('fingerprint', f'differs from the config: {line}'))
    for path in stray_partial_files(split_dir):
        problems.append(Problem('files', f'leftover of an interrupted write: '
                                         f'{path.relative_to(split_dir)}'))

    layout = manifest['layout']
    num_seeds, num_rows = layout['num_seeds'], layout['num_rows']
    ids = np.asarray(manifest['sample_ids'], dtype=np.int64)
    if len(ids) * num_seeds != num_rows:
        problems.append(Problem('manifest', f'{len(ids)} sample ids x K={num_seeds} != '
                                            f'{num_rows} rows'))
    if len(set(ids.tolist())) != len(ids):
        problems.append(Problem('manifest', 'duplicate sample ids'))
    if expected_ids is not None and list(expected_ids) != ids.tolist():
        problems.append(Problem('sample ids', _id_mismatch(ids.tolist(), list(expected_ids))))
    missing = missing_shards(manifest)
    if missing:
        problems.append(Problem('completeness', f'{len(missing)} of {layout["num_shards"]} '
                                                f'shards have no record: {missing[:20]}'))

    try:
        arrays = open_split_arrays(split_dir, mode='r')
    except Exception as err:  # noqa: BLE001 - any failure to open is a finding
        problems.append(Problem('arrays', f'cannot open: {err}'))
        return problems
    specs = array_specs(tuple(layout['map_size']), layout['arrays']['depth']['dtype'],
                        layout['arrays']['normal']['dtype'])
    for name, (row_shape, dtype) in specs.items():
        arr = arrays[name]
        if arr.shape != (num_rows, *row_shape) or str(arr.dtype) != dtype:
            problems.append(Problem(f'array {name}', f'shape {arr.shape} dtype {arr.dtype}, '
                                                     f'expected {(num_rows, *row_shape)} {dtype}'))
    if any(p.where.startswith('array ') for p in problems):
        return problems

    ranges = shard_ranges(num_rows, layout['rows_per_shard'])
    for j in range(len(ranges)):
        rec = manifest['shards'].get(str(j))
        if rec is None:
            continue
        for rel in shard_file_keys(arrays, j).values():
            if not (split_dir / rel).is_file():
                problems.append(Problem(f'shard {j}', f'recorded but file {rel} is missing'))
    if full:
        for j, (r0, r1) in enumerate(ranges):
            if str(j) in manifest['shards']:
                problems += _full_check_shard(split_dir, arrays, manifest['shards'][str(j)], j,
                                              r0, r1, ids, num_seeds, depth_range, normal_tol)
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


def _full_check_shard(split_dir: Path, arrays: dict, rec: dict, j: int, r0: int, r1: int,
                      ids: np.ndarray, num_seeds: int,
                      depth_range: tuple[float, float] | None, normal_tol: float
                      ) -> list[Problem]:
    problems = []
    for rel, digest in rec['files'].items():
        path = split_dir / rel
        if path.is_file() and sha256_file(path) != digest:
            problems.append(Problem(f'shard {j}', f'file {rel} differs from its recorded hash'))
    values: dict[str, list] = {name: [] for name in ROW_ARRAYS}
    readable = True
    for name in ('sample_id', 'seed_k', 'affine'):
        try:
            values[name] = arrays[name][r0:r1]
        except Exception as err:  # noqa: BLE001 - a decode failure is the finding
            problems.append(Problem(f'shard {j}', f'{name} rows {r0}..{r1 - 1} unreadable: '
                                                  f'{type(err).__name__}: {err}'))
            readable = False
    for name in ('depth', 'normal'):
        rows = []
        for r in range(r0, r1):
            try:
                rows.append(arrays[name][r])
            except Exception as err:  # noqa: BLE001 - a CRC32C failure names the row
                problems.append(Problem(_where(r, ids, num_seeds),
                                        f'{name} chunk unreadable: {type(err).__name__}: {err}'))
                readable = False
        values[name] = rows
    if not readable:
        return problems
    stored = {name: np.asarray(v) for name, v in values.items()}
    if data_sha256(stored) != rec['data_sha256']:
        problems.append(Problem(f'shard {j}', 'decoded values differ from the recorded hash'))
    want_ids = np.repeat(ids, num_seeds)[r0:r1]
    want_ks = np.arange(r0, r1) % num_seeds
    for i in np.flatnonzero((stored['sample_id'] != want_ids) | (stored['seed_k'] != want_ks)):
        problems.append(Problem(_where(r0 + int(i), ids, num_seeds),
                                f'stored id {stored["sample_id"][i]}, k {stored["seed_k"][i]}'))
    depth = stored['depth'].astype(np.float32)
    normal = stored['normal'].astype(np.float32)
    if stored['normal'].dtype == np.int8:
        normal /= NORMAL_INT8_SCALE
    norms = np.sqrt((normal ** 2).sum(axis=1))
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
        dev = float(np.abs(norms[i] - 1.0).max())
        if dev > normal_tol:
            problems.append(Problem(where, f'normal length deviates from 1 by {dev:.3g} '
                                           f'(> {normal_tol})'))
    if np.isfinite(depth).all() and (depth.min() < rec['depth_min'] or
                                      depth.max() > rec['depth_max']):
        problems.append(Problem(f'shard {j}', 'depth outside the recorded min/max'))
    return problems
