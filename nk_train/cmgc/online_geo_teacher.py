"""The geometric teacher run inside the training step (CMGC ``cmgc_source='online'``).

It computes what the cache holds for the same view: ``teacher_maps`` on ``geo_teacher_crop``
(the view cut at the teacher's input size by ``GeoTeacherCrop``) and its inside-the-image mask.
Without the storage quantisation (float16 depth, int8 normals) the result equals the cached
row. Used to check the cache against the online teacher and to measure what the cache saves.
Like the ddp_prior the teacher is a ``FrozenModel``: outside the Stage1 model's state dict,
optimiser and EMA, and its files are read on first use (the Stage1 model asks for it when
training starts).
"""
from __future__ import annotations

from functools import partial
from typing import Any, Mapping

import torch

from ..frozen import FrozenModel
from .geometric_teacher import GeometricTeacher, build_geometric_teacher
from .teacher_maps import teacher_maps


class OnlineGeoTeacher:
    """Args:
        teacher: the teacher config with resolved file paths
            (``GeoCacheSettings.teacher_files_resolved()`` of the ``geo_cache`` the cache would
            have been built from).
        map_size: (w, h) of the map grid (``geo_cache.map_size``).
    """

    def __init__(self, teacher: Mapping[str, Any], map_size: tuple[int, int]) -> None:
        self.frozen = FrozenModel(partial(build_geometric_teacher, dict(teacher), 'cpu'),
                                  'online geometric teacher')
        self.map_size = (int(map_size[0]), int(map_size[1]))

    @property
    def teacher(self) -> GeometricTeacher:
        return self.frozen.get()

    def __call__(self, crops: torch.Tensor, inside: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """B x 3 x h x w BGR teacher crops and their inside masks -> depth, normals, validity
        on the map grid."""
        teacher = self.frozen.get(crops.device)
        if tuple(crops.shape[-2:]) != teacher.input_size:
            raise ValueError(f'online geometric teacher: crops are {tuple(crops.shape[-2:])} '
                             f'(h, w), the teacher input is {teacher.input_size}')
        return teacher_maps(teacher, crops, inside, self.map_size)
