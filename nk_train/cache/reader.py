"""Training-side access to a split cache: refuse stale or incomplete caches, read one view.

What is verified when (costs measured by ``benchmarks/geo_cache_scale.py``):

- at construction (dataset build, main process; one parse of a manifest that holds nothing
  per shard, the two record tables loaded and hashed, one ``stat`` per distinct image): the
  manifest's format, that the cache is complete, its fingerprint against the one the current
  config implies (naming the changed inputs), every image file against the image table
  (naming each changed image), the record tables against their recorded sha256, and the
  arrays' codecs.
- when a process first touches shard j: each of its files has its recorded size, and the
  small per-row arrays (sample id, k, affine; one chunk file each) carry their recorded
  CRC32C and agree with the manifest's sample ids.
- on every read: the map chunk's CRC32C against its bytes and against the CRC32C recorded
  for that row (``shard_reader.py``), so a swapped, truncated or foreign shard file is
  refused with its path instead of being trained on.

Nothing per shard happens at start-up: a DataLoader worker gets the reader pickled with the
expected sizes and checksums as numpy arrays, opens the arrays' metadata on its first read,
and touches only the shards it reads. Map rows are read with ``ShardedRowReader`` (two
``pread`` calls).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from .fingerprint import cache_differences
from .instances import InstanceList
from .layout import MAP_ARRAYS, SMALL_ARRAYS, open_split_arrays
from .manifest import journal_shard_ids, load_manifest, load_record_table
from .normal_codec import decode_normal
from .shard_reader import ShardedRowReader, expected_codecs, read_chunk_file


class StaleCacheError(RuntimeError):
    """The cache was built from other settings or image files than the current ones."""


class IncompleteCacheError(RuntimeError):
    """Some shards of the cache have no record (precompute failed or is still running)."""


class GeoCacheMismatchError(RuntimeError):
    """A cached row does not belong to the view the pipeline produced."""


@dataclass(frozen=True)
class GeoMaps:
    depth: np.ndarray  # 1 x mh x mw float32
    normal: np.ndarray  # 3 x mh x mw float32, unit length, loss frame (right, down, away)
    valid: np.ndarray  # 1 x mh x mw float32 in {0, 1}
    affine: np.ndarray  # 2 x 3 float64, original image -> crop


class GeoCacheReader:
    """Read views of one split cache by (sample id, k).

    Args:
        split_dir: the split's cache directory.
        expected_inputs: the fingerprint inputs the current config implies.
        instances: the split's instances as the config lists them (their image files are
            checked against the cache's image table).
        ignore_keys: fingerprint inputs that cannot be verified here (absent teacher files).
    """

    def __init__(self, split_dir: str | Path, expected_inputs: Mapping[str, Any],
                 instances: InstanceList, ignore_keys: Iterable[str] = ()) -> None:
        self.split_dir = Path(split_dir)
        manifest = load_manifest(self.split_dir)
        layout = manifest['layout']
        if not manifest['complete']:
            num = layout['num_shards']
            raise IncompleteCacheError(
                f'geometric cache {self.split_dir} is incomplete: '
                f'{num - len(journal_shard_ids(self.split_dir))} of {num} shards have no record; '
                'finish it with precompute/geo_cache.py --resume')
        diffs = cache_differences(manifest, expected_inputs, instances, ignore_keys)
        if diffs:
            raise StaleCacheError(
                f'geometric cache {self.split_dir} was built from other settings or image files '
                'than the current ones; changed:\n  ' + '\n  '.join(diffs) +
                '\nRebuild it: python precompute/geo_cache.py --split '
                f'{manifest["split"]} --config CONFIG --overwrite')
        self._table = load_record_table(self.split_dir, manifest)
        for name, arr in open_split_arrays(self.split_dir, mode='r').items():
            problem = expected_codecs(arr)
            if problem is not None:
                raise ValueError(f'{self.split_dir / name}: not the geometric cache layout '
                                 f'({problem})')
        self.fingerprint = manifest['fingerprint']
        self.num_seeds = int(layout['num_seeds'])
        self.rows_per_shard = int(layout['rows_per_shard'])
        self.sample_ids = np.asarray(manifest['sample_ids'], dtype=np.int64)
        self._order = np.argsort(self.sample_ids, kind='stable')
        self._sorted_ids = self.sample_ids[self._order]
        self._num_rows = int(layout['num_rows'])
        self._arrays: dict | None = None  # opened per process, on the first read
        self._maps: dict[str, ShardedRowReader] = {}
        self._affines: dict[int, np.ndarray] = {}

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.update(_arrays=None, _maps={}, _affines={})  # no open handles into workers
        return state

    def __len__(self) -> int:
        return len(self.sample_ids) * self.num_seeds

    def _open(self) -> None:
        self._arrays = open_split_arrays(self.split_dir, mode='r')
        self._maps = {name: ShardedRowReader(self._arrays[name], self.split_dir / name,
                                             self._table.sizes[name], self._table.crcs[name])
                      for name in MAP_ARRAYS}

    def _shard_affine(self, j: int) -> np.ndarray:
        """The affines of shard j, after tying its small files to the record and the
        manifest (once per shard and process)."""
        affine = self._affines.get(j)
        if affine is not None:
            return affine
        r0, r1 = j * self.rows_per_shard, min((j + 1) * self.rows_per_shard, self._num_rows)
        values = {}
        for name in SMALL_ARRAYS:
            arr = self._arrays[name]
            coords = (j,) + (0,) * (arr.ndim - 1)
            path = self.split_dir / name / arr.metadata.encode_chunk_key(coords)
            values[name] = read_chunk_file(path, int(self._table.sizes[name][j]),
                                           int(self._table.crcs[name][j]), arr)[:r1 - r0]
        rows = np.arange(r0, r1)
        want_ids, want_ks = self.sample_ids[rows // self.num_seeds], rows % self.num_seeds
        bad = np.flatnonzero((values['sample_id'] != want_ids) | (values['seed_k'] != want_ks))
        if bad.size:
            r = int(bad[0])
            raise GeoCacheMismatchError(
                f'{self.split_dir}: {bad.size} rows of shard {j} disagree with the manifest, '
                f'first row {r0 + r}: stored (id {values["sample_id"][r]}, k '
                f'{values["seed_k"][r]}), manifest (id {want_ids[r]}, k {want_ks[r]})')
        self._affines[j] = values['affine']
        return values['affine']

    def row(self, sample_id: int, k: int) -> int:
        i = int(np.searchsorted(self._sorted_ids, int(sample_id)))
        if i == len(self._sorted_ids) or self._sorted_ids[i] != int(sample_id):
            raise KeyError(f'sample {sample_id} is not in the geometric cache {self.split_dir} '
                           '(built for another annotation file or subset?)')
        if not 0 <= int(k) < self.num_seeds:
            raise KeyError(f'sample {sample_id}: view k={k} outside the cached 0..'
                           f'{self.num_seeds - 1}')
        return int(self._order[i]) * self.num_seeds + int(k)

    def read(self, sample_id: int, k: int) -> GeoMaps:
        r = self.row(sample_id, k)
        if self._arrays is None:
            self._open()
        affine = self._shard_affine(r // self.rows_per_shard)[r % self.rows_per_shard]
        depth = self._maps['depth'].read(r).astype(np.float32)
        normal = decode_normal(self._maps['normal'].read(r))
        valid = self._maps['valid'].read(r).astype(np.float32)
        return GeoMaps(depth=depth, normal=normal, valid=valid, affine=affine)
