"""``LoadGeoCacheMaps``: attach the cached teacher depth/normal maps of the current view.

Place it after ``SeededTopdownAffine`` (it needs ``geo_affine``) in a pipeline of a dataset
wrapped by ``SeededViewDataset``. It reads the row of (``nk_sample_id``, ``geo_seed_k``),
refuses the sample if the stored affine is not the one the pipeline just computed (so a cache
can never be paired with the wrong crop), and adds ``geo_depth`` (1 x mh x mw),
``geo_normal`` (3 x mh x mw, unit) and ``geo_valid`` (1 x mh x mw, {0, 1}) float32 maps.
``rescale_affine(geo_affine, input_size, map_size)`` maps image pixels to map pixels (UDP
grid; equal to the heatmap grid when ``map_size`` is the heatmap size).

The stale-cache check runs when the transform is built (dataset build), against the same
``geo_cache`` dict the precompute used: any fingerprint input that differs is named, and so is
any image file that changed since. ``SeededViewDataset`` then hands the transform its dataset
(``check_dataset``): a dataset with other instances, views or image files than the cache is
refused there, at build, not at its first read.

``cache`` is a copy of the config's ``geo_cache`` made when the config is parsed, so
``--cfg-options geo_cache.root=...`` does not reach it: ``GeoCacheCopiesHook`` refuses to
train when a copy differs from ``geo_cache`` (naming both).
"""
from __future__ import annotations

import logging
import os
from typing import Any, Mapping, Sequence

import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.logging import print_log
from mmpose.registry import TRANSFORMS

from ..cmgc.cache_inputs import split_fingerprint_inputs
from ..cache.manifest import ManifestError
from ..cache.reader import GeoCacheMismatchError, GeoCacheReader
from ..cache.settings import GeoCacheSettings


@TRANSFORMS.register_module()
class LoadGeoCacheMaps(BaseTransform):
    """Args:
        cache: the ``geo_cache`` config dict (the one precompute used).
        split: which split cache to read (``labeled``, ``unlabeled``, ``val``).
        indices: the wrapped dataset's ``indices`` (subset), if any: it is part of the
            fingerprint, so the cache must have been built with the same subset.
        atol: tolerance (crop pixels per unit) when comparing the stored and computed affine.
    """

    def __init__(self, cache: Mapping[str, Any], split: str,
                 indices: Sequence[int] | int | None = None, atol: float = 1e-6) -> None:
        super().__init__()
        settings = GeoCacheSettings.from_config(cache)
        inputs, unverifiable, instances = split_fingerprint_inputs(settings, split, indices)
        self.split = split
        self.atol = float(atol)
        self.map_size = settings.map_size
        try:
            self.reader = GeoCacheReader(settings.split_dir(split), inputs, instances,
                                         unverifiable)
        except ManifestError as err:
            raise ManifestError(f'LoadGeoCacheMaps(split={split!r}) reads the root of its own '
                                f'`cache` dict, {settings.root!r}: {err}') from err
        self._instances = instances  # for check_dataset; not pickled into workers
        self.unverified = tuple(unverifiable)
        if unverifiable:
            print_log(f'LoadGeoCacheMaps({split}): teacher files absent here, so {unverifiable} '
                      'could not be compared with the cache; everything else was',
                      logger='current', level=logging.WARNING)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state['_instances'] = None
        return state

    def check_dataset(self, samples: Sequence[tuple[int, str]], num_seeds: int,
                      dataset: str) -> None:
        """Refuse a dataset (``samples``: its (sample id, image path) pairs) that is not the
        split this cache holds: other instances, another K, or other image files."""
        where = f'{dataset} with LoadGeoCacheMaps({self.split!r}, {self.reader.split_dir})'
        if num_seeds != self.reader.num_seeds:
            raise GeoCacheMismatchError(f'{where}: the dataset has K={num_seeds} views per '
                                        f'instance, the cache K={self.reader.num_seeds}')
        cached = {inst.sample_id: inst.img_path for inst in self._instances.instances}
        ids = {sid for sid, _ in samples}
        lost, extra = sorted(set(cached) - ids), sorted(ids - set(cached))
        if lost or extra:
            raise GeoCacheMismatchError(
                f'{where}: the dataset and the cache hold different instances: {len(extra)} '
                f'of the dataset are not cached {extra[:10]}, {len(lost)} cached ones are not '
                f'in the dataset {lost[:10]}; give the dataset and LoadGeoCacheMaps the same '
                'annotation file and the same `indices`')
        other = [(sid, path) for sid, path in samples if not _same_file(path, cached[sid])]
        if other:
            sid, path = other[0]
            raise GeoCacheMismatchError(
                f'{where}: {len(other)} samples read other image files than the cache was '
                f'computed from, first sample {sid}: dataset {path}, cache {cached[sid]} '
                '(the dataset\'s data_root/data_prefix and geo_cache.data_root/image_prefix '
                'must name the same images)')

    def transform(self, results: dict) -> dict:
        for key in ('nk_sample_id', 'geo_seed_k', 'geo_affine'):
            if key not in results:
                raise KeyError(f'LoadGeoCacheMaps needs results[{key!r}] (img '
                               f'{results.get("img_path")}): use SeededViewDataset and put '
                               'SeededTopdownAffine before it')
        sid, k = int(results['nk_sample_id']), int(results['geo_seed_k'])
        maps = self.reader.read(sid, k)
        computed = np.asarray(results['geo_affine'], dtype=np.float64)
        if not np.allclose(maps.affine, computed, rtol=0.0, atol=self.atol):
            raise GeoCacheMismatchError(
                f'sample {sid} view {k} ({results.get("img_path")}): the cached affine '
                f'{maps.affine.tolist()} differs from the pipeline\'s {computed.tolist()} '
                f'(split {self.split!r}); the crop settings of the pipeline and of geo_cache '
                'disagree')
        results['geo_depth'] = maps.depth
        results['geo_normal'] = maps.normal
        results['geo_valid'] = maps.valid
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(split={self.split!r}, '
                f'cache={str(self.reader.split_dir)!r}, '
                f'fingerprint={self.reader.fingerprint[:12]})')


def _same_file(a: str, b: str) -> bool:
    if os.path.abspath(a) == os.path.abspath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
