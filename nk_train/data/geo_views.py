"""Carry the geometric teacher's inputs/outputs of a seeded view into the packed samples.

``PackPoseInputs`` keeps only the meta keys it is given, so the maps that ``LoadGeoCacheMaps``
adds (``geo_depth`` 1 x mh x mw, ``geo_normal`` 3 x mh x mw, ``geo_valid`` 1 x mh x mw) would be
dropped. ``PackGeoViewInputs`` is ``PackPoseInputs`` with the seeded-view meta keys plus the
geometric ones; pass it as ``WeakStrongViews(pack=dict(type='PackGeoViewInputs'))``. Every
view of a crop then carries the maps of that crop's (id, k) row in its ``metainfo``; the
Stage1 model stacks them (``stack_geo_maps``). Keys absent from the results are not packed,
so the same packer serves runs without CMGC.

``GeoTeacherCrop`` prepares the *online* CMGC teacher's input: the same view cut directly
from the original image at the geometric teacher's input size, with the precompute task's own
functions (``sample_geometry`` -> ``crop_region`` -> ``region_affine`` -> ``warp_crop``), so an
online teacher sees exactly the pixels the precompute saw. It must run before
``SeededTopdownAffine`` (which replaces ``img`` by the student crop).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmpose.datasets.transforms import PackPoseInputs
from mmpose.registry import TRANSFORMS

from ..cache.settings import GeoCacheSettings
from ..crop_geometry import crop_inside, region_affine, warp_crop
from .seeded_topdown_affine import seeded_view_region
from .views import VIEW_META_KEYS

GEO_MAP_KEYS = ('geo_depth', 'geo_normal', 'geo_valid')
GEO_TEACHER_KEYS = ('geo_teacher_crop', 'geo_teacher_inside')
GEO_VIEW_META_KEYS = (*VIEW_META_KEYS, *GEO_MAP_KEYS, *GEO_TEACHER_KEYS)


@TRANSFORMS.register_module()
class PackGeoViewInputs(PackPoseInputs):
    """``PackPoseInputs`` that also keeps the geometric-cache maps and the teacher crop."""

    def __init__(self, meta_keys: Sequence[str] = GEO_VIEW_META_KEYS, **kwargs) -> None:
        super().__init__(meta_keys=tuple(meta_keys), **kwargs)


@TRANSFORMS.register_module()
class GeoTeacherCrop(BaseTransform):
    """Add ``geo_teacher_crop`` (h x w x 3 uint8 BGR at the teacher's input size) of view
    ``geo_seed_k`` of sample ``nk_sample_id``, cut as ``precompute/geo_cache.py`` cuts it, and
    ``geo_teacher_inside`` (h x w uint8, 1 where the crop's pixels come from the image).

    Args:
        cache: the ``geo_cache`` config dict (crop size, seeds, augmentation, teacher size).
    """

    def __init__(self, cache: Mapping[str, Any]) -> None:
        super().__init__()
        settings = GeoCacheSettings.from_config(cache)
        self.input_size = settings.input_size
        self.aug = settings.aug
        self.global_seed = settings.global_seed
        self.min_bbox_size = settings.min_bbox_size
        th, tw = settings.teacher.get('input_size', (1024, 768))
        self.teacher_wh = (int(tw), int(th))

    def transform(self, results: dict) -> dict:
        for key in ('nk_sample_id', 'geo_seed_k', 'bbox_center', 'bbox_scale', 'img'):
            if key not in results:
                raise KeyError(f'GeoTeacherCrop needs results[{key!r}] (img '
                               f'{results.get("img_path")}): wrap the dataset in '
                               'SeededViewDataset and place it after GetBBoxCenterScale, '
                               'before SeededTopdownAffine')
        _, region = seeded_view_region(results, self.aug, self.global_seed, self.input_size,
                                       self.min_bbox_size)
        affine = region_affine(region, self.teacher_wh)
        results['geo_teacher_crop'] = warp_crop(results['img'], affine, self.teacher_wh)
        results['geo_teacher_inside'] = crop_inside(results['img'].shape[:2], affine,
                                                    self.teacher_wh)
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(teacher_wh={self.teacher_wh})'


def _stacked(samples: Sequence, key: str, hint: str) -> np.ndarray:
    missing = [i for i, s in enumerate(samples) if key not in s.metainfo]
    if missing:
        first = samples[missing[0]].metainfo
        raise KeyError(f'unlabeled sample {first.get("nk_sample_id")} view '
                       f'{first.get("geo_seed_k")} ({first.get("img_path")}) has no {key!r}: '
                       f'{hint}')
    return np.stack([np.asarray(s.metainfo[key]) for s in samples])


def stack_geo_maps(samples: Sequence, device: torch.device | str
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Cached depth (B x 1 x h x w), normals (B x 3 x h x w) and validity (B x 1 x h x w,
    {0, 1}), float32, of packed views."""
    hint = ('put LoadGeoCacheMaps in the unlabeled pipeline and pack with '
            "WeakStrongViews(pack=dict(type='PackGeoViewInputs'))")
    return tuple(torch.from_numpy(_stacked(samples, key, hint)).to(device, torch.float32)
                 for key in GEO_MAP_KEYS)


def stack_teacher_crops(samples: Sequence, device: torch.device | str
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """The online teacher's input crops of packed views (B x 3 x h x w uint8, BGR) and the
    masks of their pixels inside the image (B x h x w)."""
    hint = ('put GeoTeacherCrop before SeededTopdownAffine in the unlabeled pipeline and pack '
            "with WeakStrongViews(pack=dict(type='PackGeoViewInputs'))")
    crops, inside = (_stacked(samples, key, hint) for key in GEO_TEACHER_KEYS)
    return (torch.from_numpy(crops).permute(0, 3, 1, 2).to(device),
            torch.from_numpy(inside).to(device))
