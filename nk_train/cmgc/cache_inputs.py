"""What a split's geometric cache must have been computed from, as the config says it now.

The fingerprint inputs (``nk_train.cache.fingerprint``) of a split: its settings and
instances, the teacher's description (``teacher_description``: files by content) and the
source of every module whose code decides the cached values (``CODE_MODULES``). Used by
precompute to stamp a cache, and by the training-side reader, ``tools/check_cache.py`` and
the cache preview to compare against that stamp.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from ..cache.fingerprint import code_digests, fingerprint_inputs
from ..cache.instances import InstanceList, list_instances
from ..cache.settings import GeoCacheSettings
from .geometric_teacher import teacher_description

# The views (crop geometry, image decoding), the teacher (pre-processing, file loading, the
# stand-in's networks), the resampling to the map grid, the rows a task assembles and how
# normals are stored. A module that starts to compute cached values belongs here.
CODE_MODULES = ('nk_train.crop_geometry', 'nk_train.cache.images',
                'nk_train.cmgc.geometric_teacher', 'nk_train.cmgc.stand_in_teacher',
                'nk_train.cmgc.teacher_files', 'nk_train.cmgc.teacher_maps',
                'nk_train.cmgc.cache_shard', 'nk_train.cache.normal_codec')


def unverifiable_keys(teacher_desc: Mapping[str, Any]) -> list[str]:
    """Teacher checkpoint hashes that could not be computed here (file absent), e.g. on a
    training node without the teacher files: those keys are not compared."""
    return [f'teacher.{task}.sha256' for task in ('depth', 'normal', 'segmentation')
            if isinstance(teacher_desc.get(task), Mapping)
            and teacher_desc[task].get('sha256') is None]


def split_fingerprint_inputs(settings: GeoCacheSettings, split: str,
                             indices: Sequence[int] | int | None = None,
                             hash_teacher_files: bool = True
                             ) -> tuple[dict[str, Any], list[str], InstanceList]:
    """Fingerprint inputs of ``split`` as the config describes it now.

    Returns (inputs, keys that could not be verified here, the split's instances).
    """
    sp = settings.split(split)
    instances = list_instances(settings.ann_path(split), settings.img_dir,
                               sp.require_keypoints).select(indices)
    teacher_desc = teacher_description(settings.teacher_files_resolved(),
                                       hash_files=hash_teacher_files)
    inputs = fingerprint_inputs(settings, split, instances, teacher_desc,
                                code_digests(CODE_MODULES))
    return inputs, unverifiable_keys(teacher_desc), instances
