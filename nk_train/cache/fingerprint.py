"""The cache fingerprint: sha256 of the canonical JSON of everything that decides its contents.

Like Hugging Face datasets' fingerprints, but the inputs are stored next to the hash, so a
mismatch can say *what* changed ("aug.rotate_factor: cache 30.0, config 20.0") instead of only
that something did. Layout choices that do not change values (rows per shard, compressor) are
not fingerprint inputs.
"""
from __future__ import annotations

import hashlib
import json
from typing import Any, Iterable, Mapping, Sequence

from .instances import InstanceList, list_instances
from .layout import FORMAT_VERSION, MAP_RESAMPLING
from .settings import GeoCacheSettings


def canonical_json(obj: Any) -> str:
    """Deterministic JSON: sorted keys, no whitespace, ASCII, tuples as lists."""
    return json.dumps(obj, sort_keys=True, separators=(',', ':'), ensure_ascii=True,
                      allow_nan=False)


def fingerprint(inputs: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(inputs).encode('ascii')).hexdigest()


def ids_sha256(sample_ids: Iterable[int]) -> str:
    return hashlib.sha256(canonical_json([int(i) for i in sample_ids]).encode()).hexdigest()


def fingerprint_inputs(settings: GeoCacheSettings, split: str, instances: InstanceList,
                       teacher_desc: Mapping[str, Any]) -> dict[str, Any]:
    """The fingerprint inputs of one split's cache (JSON-able)."""
    sp = settings.split(split)
    subset = instances.subset
    return json.loads(canonical_json(dict(
        format_version=FORMAT_VERSION,
        teacher=dict(teacher_desc),
        crop=dict(input_size=list(settings.input_size), bbox_padding=settings.bbox_padding,
                  min_bbox_size=settings.min_bbox_size, image_decode='cv2.IMREAD_COLOR',
                  warp='cv2.warpAffine INTER_LINEAR, UDP matrix, flip x->(w-1)-x'),
        aug=settings.aug.to_dict(),
        num_seeds=sp.num_seeds,
        global_seed=settings.global_seed,
        maps=dict(size=list(settings.map_size), depth_dtype=settings.depth_dtype,
                  normal_encoding=settings.normal_encoding, resampling=MAP_RESAMPLING),
        annotations=dict(sha256=instances.ann_sha256,
                         require_keypoints=instances.require_keypoints,
                         subset=list(subset) if isinstance(subset, tuple) else subset,
                         num_instances=len(instances),
                         sample_ids_sha256=ids_sha256(instances.sample_ids)),
    )))


def _flatten(obj: Any, prefix: str = '') -> dict[str, Any]:
    if isinstance(obj, Mapping):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            out.update(_flatten(v, f'{prefix}{k}.'))
        return out
    return {prefix[:-1]: obj}


def diff_inputs(cached: Mapping[str, Any], current: Mapping[str, Any],
                ignore: Iterable[str] = ()) -> list[str]:
    """Human-readable differences ``key: cache X, config Y`` (empty = same)."""
    a, b = _flatten(cached), _flatten(current)
    skip = set(ignore)
    lines = []
    for key in sorted(set(a) | set(b)):
        if key in skip:
            continue
        if key not in a:
            lines.append(f'{key}: absent in cache, config {b[key]!r}')
        elif key not in b:
            lines.append(f'{key}: cache {a[key]!r}, absent in config')
        elif a[key] != b[key]:
            lines.append(f'{key}: cache {a[key]!r}, config {b[key]!r}')
    return lines


def unverifiable_keys(teacher_desc: Mapping[str, Any]) -> list[str]:
    """Teacher checkpoint hashes that could not be computed here (file absent), e.g. on a
    training node without the teacher files: those keys are not compared."""
    return [f'teacher.{task}.sha256' for task in ('depth', 'normal')
            if isinstance(teacher_desc.get(task), Mapping)
            and teacher_desc[task].get('sha256') is None]


def split_fingerprint_inputs(settings: GeoCacheSettings, split: str,
                             indices: Sequence[int] | int | None = None,
                             hash_teacher_files: bool = True
                             ) -> tuple[dict[str, Any], list[str], InstanceList]:
    """Fingerprint inputs of ``split`` as the config describes it now.

    Returns (inputs, keys that could not be verified here, the split's instances). Used by
    precompute (to stamp the cache), the training-side reader and ``tools/check_cache.py``
    (to compare against the stamp).
    """
    from ..cmgc.geometric_teacher import teacher_description

    sp = settings.split(split)
    instances = list_instances(settings.ann_path(split), settings.img_dir,
                               sp.require_keypoints).select(indices)
    teacher_desc = teacher_description(settings.teacher_files_resolved(),
                                       hash_files=hash_teacher_files)
    inputs = fingerprint_inputs(settings, split, instances, teacher_desc)
    return inputs, unverifiable_keys(teacher_desc), instances
