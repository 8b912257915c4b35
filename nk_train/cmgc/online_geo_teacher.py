"""The geometric teacher run inside the training step (CMGC ``cmgc_source='online'``).

It computes what the cache holds for the same view: ``teacher_maps`` on ``geo_teacher_crop``
(the view cut at the teacher's input size by ``GeoTeacherCrop``) and its inside-the-image mask.
Without the storage quantisation (float16 depth, int8 normals) the result equals the cached
row. Used to check the cache against the online teacher and to measure what the cache saves;
like the ddp_prior it is kept out of the Stage1 model's state dict and optimiser.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch

from .geometric_teacher import build_geometric_teacher
from .teacher_maps import teacher_maps


class OnlineGeoTeacher:
    """Args:
        teacher: the teacher config with resolved file paths
            (``GeoCacheSettings.teacher_files_resolved()`` of the ``geo_cache`` the cache would
            have been built from).
        map_size: (w, h) of the map grid (``geo_cache.map_size``).
    """

    def __init__(self, teacher: Mapping[str, Any], map_size: tuple[int, int]) -> None:
        self.teacher = build_geometric_teacher(teacher, 'cpu')
        self.map_size = (int(map_size[0]), int(map_size[1]))

    def __call__(self, crops: torch.Tensor, inside: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """B x 3 x h x w BGR teacher crops and their inside masks -> depth, normals, validity
        on the map grid."""
        if tuple(crops.shape[-2:]) != self.teacher.input_size:
            raise ValueError(f'online geometric teacher: crops are {tuple(crops.shape[-2:])} '
                             f'(h, w), the teacher input is {self.teacher.input_size}')
        self.teacher.to(crops.device)
        return teacher_maps(self.teacher, crops, inside, self.map_size)
