"""Training-side access to a split cache: refuse stale or incomplete caches, read one view.

Construction (in the main process, at dataset build) only reads ``manifest.json``: it checks
the fingerprint against the one the current config implies, and completeness. Zarr arrays are
opened lazily on the first read in each process (DataLoader workers get a pickled reader
without open handles), and the small per-row arrays (sample id, k, affine) are loaded whole
and cross-checked against the manifest once per process. Map rows are read with
``ShardedRowReader`` (two ``pread`` calls, CRC32C verified) for speed.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from .fingerprint import diff_inputs, fingerprint
from .layout import decode_normal, open_split_arrays
from .manifest import ManifestError, load_manifest, missing_shards
from .shard_reader import ShardedRowReader


class StaleCacheError(RuntimeError):
    """The cache was built from other settings than the current config."""


class IncompleteCacheError(RuntimeError):
    """Some shards of the cache have no record (precompute failed or is still running)."""


class GeoCacheMismatchError(RuntimeError):
    """A cached row does not belong to the view the pipeline produced."""


@dataclass(frozen=True)
class GeoMaps:
    depth: np.ndarray  # 1 x mh x mw float32
    normal: np.ndarray  # 3 x mh x mw float32, unit length
    affine: np.ndarray  # 2 x 3 float64, original image -> crop


class GeoCacheReader:
    """Read views of one split cache by (sample id, k)."""

    def __init__(self, split_dir: str | Path, expected_inputs: Mapping[str, Any] | None = None,
                 ignore_keys: Iterable[str] = ()) -> None:
        self.split_dir = Path(split_dir)
        manifest = load_manifest(self.split_dir)
        if fingerprint(manifest['fingerprint_inputs']) != manifest['fingerprint']:
            raise ManifestError(f'{self.split_dir}: manifest fingerprint does not match its own '
                                'inputs (edited by hand?); rebuild with --overwrite')
        if expected_inputs is not None:
            diffs = diff_inputs(manifest['fingerprint_inputs'], expected_inputs, ignore_keys)
            if diffs:
                raise StaleCacheError(
                    f'geometric cache {self.split_dir} was built from other settings than the '
                    'current config; changed:\n  ' + '\n  '.join(diffs) +
                    '\nRebuild it: python precompute/geo_cache.py --split '
                    f'{manifest["split"]} --config CONFIG --overwrite')
        missing = missing_shards(manifest)
        if missing:
            raise IncompleteCacheError(
                f'geometric cache {self.split_dir} is incomplete: {len(missing)} of '
                f'{manifest["layout"]["num_shards"]} shards have no record (first: '
                f'{missing[:10]}); finish it with precompute/geo_cache.py --resume')
        self.fingerprint = manifest['fingerprint']
        self.num_seeds = int(manifest['layout']['num_seeds'])
        self.sample_ids = np.asarray(manifest['sample_ids'], dtype=np.int64)
        self._index = {int(s): n for n, s in enumerate(manifest['sample_ids'])}
        self._arrays: dict | None = None
        self._affine: np.ndarray | None = None

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state['_arrays'] = None  # never pickle open store handles into workers
        state['_affine'] = None
        return state

    def __len__(self) -> int:
        return len(self.sample_ids) * self.num_seeds

    def _open(self) -> None:
        arrays = open_split_arrays(self.split_dir, mode='r')
        ids, ks = arrays['sample_id'][:], arrays['seed_k'][:]
        want_ids = np.repeat(self.sample_ids, self.num_seeds)
        want_ks = np.tile(np.arange(self.num_seeds, dtype=np.int64), len(self.sample_ids))
        bad = np.flatnonzero((ids != want_ids) | (ks != want_ks))
        if bad.size:
            r = int(bad[0])
            raise GeoCacheMismatchError(
                f'{self.split_dir}: {bad.size} rows disagree with the manifest, first row {r}: '
                f'stored (id {ids[r]}, k {ks[r]}), manifest (id {want_ids[r]}, k {want_ks[r]})')
        self._affine = arrays['affine'][:]
        self._arrays = {name: ShardedRowReader(arrays[name], self.split_dir / name)
                        for name in ('depth', 'normal')}

    def row(self, sample_id: int, k: int) -> int:
        n = self._index.get(int(sample_id))
        if n is None:
            raise KeyError(f'sample {sample_id} is not in the geometric cache {self.split_dir} '
                           '(built for another annotation file or subset?)')
        if not 0 <= int(k) < self.num_seeds:
            raise KeyError(f'sample {sample_id}: view k={k} outside the cached 0..'
                           f'{self.num_seeds - 1}')
        return n * self.num_seeds + int(k)

    def read(self, sample_id: int, k: int) -> GeoMaps:
        r = self.row(sample_id, k)
        if self._arrays is None:
            self._open()
        depth = self._arrays['depth'].read(r).astype(np.float32)
        normal = decode_normal(self._arrays['normal'].read(r))
        return GeoMaps(depth=depth, normal=normal, affine=self._affine[r])
