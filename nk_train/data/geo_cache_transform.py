"""``LoadGeoCacheMaps``: attach the cached teacher depth/normal maps of the current view.

Place it after ``SeededTopdownAffine`` (it needs ``geo_affine``) in a pipeline of a dataset
wrapped by ``SeededViewDataset``. It reads the row of (``nk_sample_id``, ``geo_seed_k``),
refuses the sample if the stored affine is not the one the pipeline just computed (so a cache
can never be paired with the wrong crop), and adds ``geo_depth`` (1 x mh x mw) and
``geo_normal`` (3 x mh x mw, unit) float32 maps. ``rescale_affine(geo_affine, input_size,
map_size)`` maps image pixels to map pixels (UDP grid; equal to the heatmap grid when
``map_size`` is the heatmap size).

The stale-cache check runs when the transform is built (dataset build), against the same
``geo_cache`` dict the precompute used: any fingerprint input that differs is named.
"""
from __future__ import annotations

import logging
from typing import Any, Mapping, Sequence

import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.logging import print_log
from mmpose.registry import TRANSFORMS

from ..cache.fingerprint import split_fingerprint_inputs
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
        inputs, unverifiable, _ = split_fingerprint_inputs(settings, split, indices)
        self.split = split
        self.atol = float(atol)
        self.map_size = settings.map_size
        self.reader = GeoCacheReader(settings.split_dir(split), inputs, unverifiable)
        self.unverified = tuple(unverifiable)
        if unverifiable:
            print_log(f'LoadGeoCacheMaps({split}): teacher files absent here, so {unverifiable} '
                      'could not be compared with the cache; everything else was',
                      logger='current', level=logging.WARNING)

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
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(split={self.split!r}, '
                f'cache={str(self.reader.split_dir)!r}, '
                f'fingerprint={self.reader.fingerprint[:12]})')
