"""Refuse to train when a copy of the config's ``geo_cache`` dict differs from it.

The Stage1 configs hand ``geo_cache`` to ``LoadGeoCacheMaps(cache=...)`` and to the model
(``model.geo_cache``), and mmengine copies it when it parses the config. So
``--cfg-options geo_cache.root=/scratch/geo`` moves ``precompute/geo_cache.py`` and
``tools/check_cache.py`` (which read ``geo_cache``) but would leave training on the old
cache. Neither mmengine nor ``tools/train.py`` offers a point where one override could reach
the copies before the datasets are built, so training refuses instead: before the first
iteration, this hook names every key where a copy differs, with both values and the
overrides that move everything.
"""
from __future__ import annotations

from typing import Any, Iterator, Mapping

from mmengine.config import Config
from mmengine.hooks import Hook
from mmpose.registry import HOOKS

from ..cache.fingerprint import flatten_dict
from ..utils import to_plain

# Config dicts of these types hold a copy of geo_cache under this key.
COPY_HOLDERS = {'LoadGeoCacheMaps': 'cache', 'GeoTeacherCrop': 'cache'}
# Where the runner builds from (helper variables of the config, e.g. unlabeled_pipeline, are
# only copied into these).
BUILT_FROM = ('model', 'train_dataloader', 'val_dataloader', 'test_dataloader')


def _copies(node: Any, path: str) -> Iterator[tuple[str, Mapping]]:
    """(dotted config path, dict) of every geo_cache copy below ``node``."""
    if isinstance(node, Mapping):
        key = COPY_HOLDERS.get(node.get('type')) if isinstance(node.get('type'), str) else None
        for k, v in node.items():
            sub = f'{path}.{k}' if path else str(k)
            if (k == key or k == 'geo_cache') and isinstance(v, Mapping):
                yield sub, v
            else:
                yield from _copies(v, sub)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _copies(v, f'{path}.{i}')


def geo_cache_copy_differences(cfg: Mapping[str, Any]) -> list[str]:
    """One line per key where a copy of ``cfg['geo_cache']`` differs from it."""
    cfg = to_plain(cfg.to_dict() if isinstance(cfg, Config) else cfg)
    if 'geo_cache' not in cfg:
        return []
    ref = flatten_dict(cfg['geo_cache'])
    lines = []
    built = {k: cfg[k] for k in BUILT_FROM if k in cfg}
    for path, copy in _copies(built, ''):
        flat = flatten_dict(copy)
        for key in sorted(set(ref) | set(flat)):
            if ref.get(key, '<absent>') != flat.get(key, '<absent>'):
                lines.append(f'{path}.{key} = {flat.get(key, "<absent>")!r}, but '
                             f'geo_cache.{key} = {ref.get(key, "<absent>")!r}')
    return lines


@HOOKS.register_module()
class GeoCacheCopiesHook(Hook):
    """Stop before training if a ``geo_cache`` copy in the config differs from ``geo_cache``."""

    priority = 'VERY_HIGH'

    def before_run(self, runner) -> None:
        lines = geo_cache_copy_differences(runner.cfg)
        if lines:
            raise ValueError(
                'the config holds copies of geo_cache that differ from geo_cache itself, so '
                'training would not read the cache that precompute/geo_cache.py and '
                'tools/check_cache.py use:\n  ' + '\n  '.join(lines) +
                '\nThe copies are made when the config is parsed, so --cfg-options '
                'geo_cache.KEY=VALUE does not reach them: override each copy too (the keys '
                'on the left) or edit the config.')
