"""Weak and strong views of unlabeled crops, branch-keyed samples and their batching.

A Stage1 batch mixes two kinds of samples:

* labeled crops, packed as usual and put in branch ``'sup'`` (``ToBranch``);
* unlabeled crops, cut once by the geometric augmentation (the seeded crop), then packed as
  branch ``'weak'`` (geometry only, the teacher's input) and ``num_strong_views`` branches
  ``'strong_0'``, ``'strong_1'``, ... (the same crop plus photometric and occlusion
  augmentation, the student's input) by ``WeakStrongViews``.

Because every strong view is derived from the weak view's warped pixels, the views are
pixel-aligned by construction: the teacher's weak-view heatmap is a valid target for the
student's strong-view heatmap. ``ssl_collate`` groups a batch by branch, keeping the sample
order identical across ``weak`` and the ``strong_*`` branches.
"""
from __future__ import annotations

import copy
from typing import Any, Sequence

import numpy as np
from mmcv.transforms import BaseTransform
from mmengine.dataset import Compose
from mmengine.registry import FUNCTIONS
from mmpose.registry import TRANSFORMS

SUP, WEAK = 'sup', 'weak'
STRONG_PREFIX = 'strong_'

# mmpose's PackPoseInputs keys plus the seeded-view keys the geometric cache and later
# losses need (packed only when present in the results).
VIEW_META_KEYS = ('id', 'img_id', 'img_path', 'category_id', 'crowd_index', 'ori_shape',
                  'img_shape', 'input_size', 'input_center', 'input_scale', 'flip',
                  'flip_direction', 'flip_indices', 'raw_ann_info', 'dataset_name',
                  'nk_sample_id', 'geo_seed_k', 'geo_affine')


def strong_branches(num_strong_views: int) -> list[str]:
    """Branch names of the strong views, in order."""
    return [f'{STRONG_PREFIX}{i}' for i in range(num_strong_views)]


def build_pipeline(transforms: Sequence[dict | Any]) -> Compose:
    """Compose transforms built from mmpose's registry (works without a default scope)."""
    return Compose([TRANSFORMS.build(t) if isinstance(t, dict) else t for t in transforms])


def _check_packed(results: Any, who: str) -> None:
    if not (isinstance(results, dict) and 'inputs' in results and 'data_samples' in results):
        raise TypeError(f'{who} expects results packed by PackPoseInputs '
                        f'(dict with inputs/data_samples), got {type(results).__name__} '
                        f'with keys {sorted(results) if isinstance(results, dict) else "-"}')


def _copy_results(results: dict) -> dict:
    """An independent copy for one view; the source ``dataset`` object is shared, not copied."""
    return {k: v if k == 'dataset' else copy.deepcopy(v) for k, v in results.items()}


def _changed_annotations(ref, other) -> list[str]:
    """Meta and instance fields that differ between two packed views (only pixels may)."""
    pairs = [(f'meta.{k}', v, other.metainfo.get(k)) for k, v in ref.metainfo.items()]
    pairs += [(f'gt_instances.{k}', v, other.gt_instances.get(k))
              for k, v in ref.gt_instances.all_items()]
    return [k for k, a, b in pairs
            if not np.array_equal(np.asarray(a, dtype=object), np.asarray(b, dtype=object))]


@TRANSFORMS.register_module()
class ToBranch(BaseTransform):
    """Put one packed sample in a named branch: ``{'inputs': {branch: x}, ...}``.

    Ends the labeled pipeline (``branch='sup'``) after ``PackPoseInputs``.
    """

    def __init__(self, branch: str = SUP) -> None:
        if branch == WEAK or branch.startswith(STRONG_PREFIX):
            raise ValueError(f'ToBranch: {branch!r} is reserved for WeakStrongViews')
        self.branch = branch

    def transform(self, results: dict) -> dict:
        _check_packed(results, 'ToBranch')
        return {'inputs': {self.branch: results['inputs']},
                'data_samples': {self.branch: results['data_samples']}}

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(branch={self.branch!r})'


@TRANSFORMS.register_module()
class WeakStrongViews(BaseTransform):
    """Pack an already cropped sample as one weak view and ``num_strong_views`` strong views.

    Args:
        strong_pipeline: transforms applied to a copy of the crop for each strong view
            (photometric and occlusion only: anything geometric would break the alignment).
        num_strong_views: how many independent strong views (default 1).
        weak_pipeline: transforms applied to the weak view only (default none).
        pack: the packing transform of every view.
    """

    def __init__(self, strong_pipeline: Sequence[dict], num_strong_views: int = 1,
                 weak_pipeline: Sequence[dict] = (),
                 pack: dict = dict(type='PackPoseInputs', meta_keys=VIEW_META_KEYS)) -> None:
        if int(num_strong_views) != num_strong_views or num_strong_views < 1:
            raise ValueError(f'WeakStrongViews: num_strong_views must be an integer >= 1, '
                             f'got {num_strong_views}')
        self.num_strong_views = int(num_strong_views)
        self.weak = build_pipeline([*weak_pipeline, pack])
        self.strong = build_pipeline([*strong_pipeline, pack])

    def transform(self, results: dict) -> dict:
        if 'input_size' not in results:
            raise KeyError(f'WeakStrongViews needs a cropped sample (input_size missing, img '
                           f'{results.get("img_path")}): run the crop transform first')
        views = {WEAK: self.weak(_copy_results(results))}
        for name in strong_branches(self.num_strong_views):
            views[name] = self.strong(_copy_results(results))
        for name, view in views.items():
            _check_packed(view, f'WeakStrongViews ({name} view)')
            if view['inputs'].shape != views[WEAK]['inputs'].shape:
                raise ValueError(f'{name} view of {results.get("img_path")} has shape '
                                 f'{tuple(view["inputs"].shape)}, the weak view '
                                 f'{tuple(views[WEAK]["inputs"].shape)}: views must stay aligned')
            moved = _changed_annotations(views[WEAK]['data_samples'], view['data_samples'])
            if moved:  # a geometric transform in one view's pipeline breaks pixel alignment
                raise ValueError(f'{name} view of {results.get("img_path")} changed {moved} '
                                 'relative to the weak view: view pipelines must not move pixels')
        return {'inputs': {k: v['inputs'] for k, v in views.items()},
                'data_samples': {k: v['data_samples'] for k, v in views.items()}}

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(num_strong_views={self.num_strong_views}, '
                f'weak={self.weak}, strong={self.strong})')


@TRANSFORMS.register_module()
class CoarseDropout(BaseTransform):
    """Occlusion augmentation: fill random rectangles of the crop with random colours.

    Args:
        prob: probability of applying it to a sample.
        num_holes: (min, max) number of rectangles, inclusive.
        hole_size: (min, max) side of a rectangle as a fraction of the crop's side.
        fill: ``'random'`` (one random colour per hole) or an int/sequence colour.
    """

    def __init__(self, prob: float = 0.5, num_holes: Sequence[int] = (1, 4),
                 hole_size: Sequence[float] = (0.05, 0.25), fill: Any = 'random') -> None:
        lo, hi = num_holes
        if not 0.0 <= prob <= 1.0 or not 0 <= lo <= hi:
            raise ValueError(f'CoarseDropout: need 0 <= prob <= 1 and 0 <= min <= max holes, '
                             f'got prob={prob}, num_holes={num_holes}')
        if not 0.0 < hole_size[0] <= hole_size[1] <= 1.0:
            raise ValueError(f'CoarseDropout: hole_size must satisfy 0 < min <= max <= 1, '
                             f'got {hole_size}')
        self.prob = float(prob)
        self.num_holes = (int(lo), int(hi))
        self.hole_size = (float(hole_size[0]), float(hole_size[1]))
        self.fill = fill

    def transform(self, results: dict) -> dict:
        if np.random.rand() >= self.prob:
            return results
        img = results['img'].copy()
        h, w = img.shape[:2]
        for _ in range(np.random.randint(self.num_holes[0], self.num_holes[1] + 1)):
            hh = max(1, int(round(h * np.random.uniform(*self.hole_size))))
            hw = max(1, int(round(w * np.random.uniform(*self.hole_size))))
            y0 = np.random.randint(0, h - hh + 1)
            x0 = np.random.randint(0, w - hw + 1)
            if self.fill == 'random':
                colour = np.random.randint(0, 256, size=img.shape[2:]).astype(img.dtype)
            else:
                colour = np.asarray(self.fill, dtype=img.dtype)
            img[y0:y0 + hh, x0:x0 + hw] = colour
        results['img'] = img
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(prob={self.prob}, num_holes={self.num_holes}, '
                f'hole_size={self.hole_size}, fill={self.fill!r})')


@FUNCTIONS.register_module()
def ssl_collate(data_batch: Sequence[dict]) -> dict:
    """Group branch-keyed samples by branch: ``{'inputs': {branch: [x, ...]}, ...}``.

    Branches keep first-seen order. Every sample that has a weak view must have the same
    strong views, so ``weak`` and each ``strong_*`` list are aligned sample by sample.
    """
    inputs: dict[str, list] = {}
    samples: dict[str, list] = {}
    view_sets = set()
    for i, item in enumerate(data_batch):
        if not (isinstance(item, dict) and isinstance(item.get('inputs'), dict)
                and isinstance(item.get('data_samples'), dict)
                and item['inputs'].keys() == item['data_samples'].keys()):
            raise TypeError(f'ssl_collate: sample {i} is not branch-keyed (end its pipeline '
                            'with ToBranch or WeakStrongViews)')
        if WEAK in item['inputs']:
            view_sets.add(tuple(item['inputs']))
        for branch, x in item['inputs'].items():
            inputs.setdefault(branch, []).append(x)
            samples.setdefault(branch, []).append(item['data_samples'][branch])
    if len(view_sets) > 1:
        raise ValueError(f'ssl_collate: unlabeled samples disagree on their views: {view_sets}')
    return {'inputs': inputs, 'data_samples': samples}
