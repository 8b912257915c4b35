"""``SeededTopdownAffine``: mmpose's random top-down crop with the seeded view of
``nk_train.crop_geometry``, so training sees exactly the views the geometric cache holds."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
from mmcv.transforms import BaseTransform
from mmpose.registry import TRANSFORMS

from ..crop_geometry import (CropGeometry, CropRegion, SeededAugConfig, apply_affine,
                             crop_region, region_affine, sample_geometry, warp_crop)


def seeded_view_region(results: dict, aug: SeededAugConfig, global_seed: int,
                       input_size: tuple[int, int], min_bbox_size: float
                       ) -> tuple[CropGeometry, CropRegion]:
    """The view ``geo_seed_k`` of sample ``nk_sample_id`` of a pipeline's ``results``: its
    seeded geometry and the crop region in the original image."""
    sid, k = int(results['nk_sample_id']), int(results['geo_seed_k'])
    geometry = sample_geometry(sid, k, aug, global_seed)
    region = crop_region(results['bbox_center'][0], results['bbox_scale'][0], geometry,
                         input_size, min_bbox_size, sample=f'{sid} ({results.get("img_path")})')
    return geometry, region


@TRANSFORMS.register_module()
class SeededTopdownAffine(BaseTransform):
    """Top-down crop of view ``geo_seed_k`` of sample ``nk_sample_id``: a drop-in for
    ``RandomFlip + RandomBBoxTransform + TopdownAffine(use_udp=True)`` whose randomness is a
    pure function of the sample, so the geometric cache built offline matches it exactly.

    Required keys: ``img``, ``bbox_center``, ``bbox_scale`` (from ``GetBBoxCenterScale``),
    ``nk_sample_id``, ``geo_seed_k`` (from ``SeededViewDataset``); ``keypoints``,
    ``keypoints_visible`` and ``flip_indices`` when present.
    Modified keys: ``img``; ``keypoints`` / ``keypoints_visible`` are permuted left/right when
    the view is flipped. Added keys: ``transformed_keypoints``, ``input_size``,
    ``input_center``, ``input_scale``, ``flip``, ``flip_direction``, ``geo_affine``
    (2x3 float64, original image -> crop). ``input_center/scale`` describe the region only:
    rotation and flip live in ``geo_affine``.

    Args:
        input_size: crop size (w, h).
        aug: ranges/probabilities (``SeededAugConfig`` keys); None = ``AUG_DEFAULTS``.
        global_seed: the run-wide seed shared with the cache config.
        min_bbox_size: padded boxes narrower than this (px) are refused as degenerate.
    """

    def __init__(self, input_size: Sequence[int], aug: Mapping[str, Any] | None = None,
                 global_seed: int = 0, min_bbox_size: float = 2.0) -> None:
        super().__init__()
        if len(input_size) != 2 or any(int(v) != v or v < 2 for v in input_size):
            raise ValueError(f'input_size must be two integers >= 2 (w, h), got {input_size}')
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.aug = SeededAugConfig.from_dict(aug)
        self.global_seed = int(global_seed)
        self.min_bbox_size = float(min_bbox_size)

    def transform(self, results: dict) -> dict:
        for key in ('nk_sample_id', 'geo_seed_k', 'bbox_center', 'bbox_scale', 'img'):
            if key not in results:
                raise KeyError(f'SeededTopdownAffine needs results[{key!r}] (img '
                               f'{results.get("img_path")}); wrap the dataset in '
                               'SeededViewDataset and run GetBBoxCenterScale first')
        sid = int(results['nk_sample_id'])
        if np.asarray(results['bbox_center']).shape[0] != 1:
            raise ValueError(f'sample {sid}: top-down crops need exactly one bbox, got '
                             f'{np.asarray(results["bbox_center"]).shape[0]}')
        geometry, region = seeded_view_region(results, self.aug, self.global_seed,
                                              self.input_size, self.min_bbox_size)
        affine = region_affine(region, self.input_size)
        results['img'] = warp_crop(results['img'], affine, self.input_size)

        if results.get('keypoints', None) is not None:
            if geometry.flip:
                if 'flip_indices' not in results:
                    raise KeyError(f'sample {sid}: flipped view needs results["flip_indices"]')
                flip_indices = list(results['flip_indices'])
                results['keypoints'] = np.take(results['keypoints'], flip_indices, axis=1)
                if results.get('keypoints_visible', None) is not None:
                    results['keypoints_visible'] = np.take(
                        results['keypoints_visible'], flip_indices, axis=1)
            kpts = results['keypoints']
            transformed = kpts.copy()
            transformed[..., :2] = apply_affine(kpts[..., :2], affine).astype(kpts.dtype)
            results['transformed_keypoints'] = transformed
        else:
            # As TopdownAffine does for instances without keypoints.
            results['transformed_keypoints'] = np.zeros([])
            results['keypoints_visible'] = np.ones((1, 1, 1))

        results['flip'] = geometry.flip
        results['flip_direction'] = 'horizontal' if geometry.flip else None
        results['input_size'] = self.input_size
        results['input_center'] = region.center.astype(np.float32)
        results['input_scale'] = region.scale.astype(np.float32)
        results['geo_affine'] = affine
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(input_size={self.input_size}, '
                f'aug={self.aug.to_dict()}, global_seed={self.global_seed})')
