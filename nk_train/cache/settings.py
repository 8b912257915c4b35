"""The ``geo_cache`` config dict, validated once and shared by precompute, reader and checks.

Stage1 configs inherit ``configs/nk_sapiens/infant/_base_/geo_cache.py``; precompute reads the
same dict. Whatever decides the cache's contents goes into its fingerprint
(``nk_train.cache.fingerprint``), so training refuses a cache built from other settings.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ..crop_geometry import SeededAugConfig
from ..paths import project_path
from ..utils import to_plain
from .normal_codec import NORMAL_ENCODINGS

DEPTH_DTYPES = ('float16', 'float32')

_REQUIRED = ('root', 'data_root', 'image_prefix', 'global_seed', 'input_size', 'map_size',
             'teacher', 'splits')
_OPTIONAL = dict(bbox_padding=1.25, min_bbox_size=2.0, aug=None, depth_dtype='float16',
                 normal_encoding='int8', rows_per_shard=64, batch_size=8, prep_threads=1,
                 blosc=dict(cname='zstd', clevel=3, shuffle='bitshuffle'))
_SPLIT_KEYS = {'ann_file', 'num_seeds', 'require_keypoints'}


def _size2(name: str, value: Any) -> tuple[int, int]:
    if len(value) != 2 or any(int(v) != v or int(v) < 2 for v in value):
        raise ValueError(f'geo_cache.{name} must be two integers >= 2 (w, h), got {value}')
    return int(value[0]), int(value[1])


@dataclass(frozen=True)
class SplitSettings:
    """One split: annotation file (relative to ``data_root``), seeds per instance, and the
    instance filter (``require_keypoints=False`` for the unlabeled pool)."""

    name: str
    ann_file: str
    num_seeds: int
    require_keypoints: bool


@dataclass(frozen=True)
class GeoCacheSettings:
    root: str
    data_root: str
    image_prefix: str
    global_seed: int
    input_size: tuple[int, int]  # student crop (w, h)
    map_size: tuple[int, int]  # cached map grid (w, h); UDP-aligned with the crop
    teacher: dict
    splits: dict
    bbox_padding: float
    min_bbox_size: float
    aug: SeededAugConfig
    depth_dtype: str
    normal_encoding: str
    rows_per_shard: int
    batch_size: int
    prep_threads: int  # decode/crop threads per task (throughput only, not in the fingerprint)
    blosc: dict

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> 'GeoCacheSettings':
        cfg = to_plain(cfg)
        missing = [k for k in _REQUIRED if k not in cfg]
        unknown = sorted(set(cfg) - set(_REQUIRED) - set(_OPTIONAL))
        if missing or unknown:
            raise ValueError(f'geo_cache config: missing keys {missing}, unknown keys {unknown}')
        values = {**_OPTIONAL, **cfg}
        if values['depth_dtype'] not in DEPTH_DTYPES:
            raise ValueError(f'geo_cache.depth_dtype must be one of {DEPTH_DTYPES}')
        if values['normal_encoding'] not in NORMAL_ENCODINGS:
            raise ValueError(f'geo_cache.normal_encoding must be one of {NORMAL_ENCODINGS}')
        for key in ('rows_per_shard', 'batch_size', 'prep_threads'):
            if int(values[key]) < 1:
                raise ValueError(f'geo_cache.{key} must be >= 1, got {values[key]}')
        splits = {}
        for name, spec in dict(values['splits']).items():
            bad = set(spec) ^ _SPLIT_KEYS
            if bad:
                raise ValueError(f'geo_cache.splits.{name} needs exactly the keys '
                                 f'{sorted(_SPLIT_KEYS)}; wrong: {sorted(bad)}')
            if int(spec['num_seeds']) < 1:
                raise ValueError(f'geo_cache.splits.{name}.num_seeds must be >= 1')
            splits[name] = SplitSettings(name=name, ann_file=str(spec['ann_file']),
                                         num_seeds=int(spec['num_seeds']),
                                         require_keypoints=bool(spec['require_keypoints']))
        return cls(
            root=str(values['root']), data_root=str(values['data_root']),
            image_prefix=str(values['image_prefix']), global_seed=int(values['global_seed']),
            input_size=_size2('input_size', values['input_size']),
            map_size=_size2('map_size', values['map_size']),
            teacher=dict(values['teacher']), splits=splits,
            bbox_padding=float(values['bbox_padding']),
            min_bbox_size=float(values['min_bbox_size']),
            aug=SeededAugConfig.from_dict(values['aug']),
            depth_dtype=values['depth_dtype'], normal_encoding=values['normal_encoding'],
            rows_per_shard=int(values['rows_per_shard']), batch_size=int(values['batch_size']),
            prep_threads=int(values['prep_threads']),
            blosc=dict(values['blosc']))

    def split(self, name: str) -> SplitSettings:
        if name not in self.splits:
            raise KeyError(f'geo_cache has no split {name!r}; configured: {sorted(self.splits)}')
        return self.splits[name]

    def ann_path(self, split: str) -> Path:
        return Path(self.data_root) / self.split(split).ann_file

    @property
    def img_dir(self) -> Path:
        return Path(self.data_root) / self.image_prefix

    def split_dir(self, split: str) -> Path:
        """``root/split``; a relative root is inside the NK-Sapiens checkout (nk_train.paths)."""
        return project_path(self.root) / split

    def teacher_files_resolved(self) -> dict:
        """The teacher config with checkpoint paths made absolute (workers may run elsewhere);
        relative paths are inside the NK-Sapiens checkout (nk_train.paths)."""
        cfg = dict(self.teacher)
        kind = cfg.get('kind')
        for task in ('depth', 'normal', 'segmentation'):  # the segmentation file, if given
            if task not in cfg:
                continue
            if kind in ('torchscript', 'export'):
                cfg[task] = str(project_path(cfg[task]))
            elif kind == 'module':
                cfg[task] = dict(cfg[task], checkpoint=str(project_path(cfg[task]['checkpoint'])))
        return cfg


