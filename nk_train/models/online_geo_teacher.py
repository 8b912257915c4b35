"""The geometric teacher run inside the training step (CMGC ``cmgc_source='online'``).

It computes what the cache holds for the same view: the teacher on ``geo_teacher_crop`` (the
view cut at the teacher's input size by ``GeoTeacherCrop``), then the cache writer's
``resample_to_map`` to the map grid and ``unit_vectors`` for the normals. Without the storage
quantisation (float16 depth, int8 normals) the result equals the cached row. Used to check the
cache against the online teacher and to measure what the cache saves; like the ddp_prior it
is kept out of the Stage1 model's state dict and optimiser.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch

from ..cache.settings import GeoCacheSettings
from ..cache.writer import resample_to_map
from ..cmgc.geometric_teacher import build_geometric_teacher, unit_vectors


class OnlineGeoTeacher:
    """Args: cache: the ``geo_cache`` dict the cache would have been built from."""

    def __init__(self, cache: Mapping[str, Any]) -> None:
        settings = GeoCacheSettings.from_config(cache)
        self.teacher = build_geometric_teacher(settings.teacher_files_resolved(), 'cpu')
        self.map_size = settings.map_size
        self.teacher_wh = (self.teacher.input_size[1], self.teacher.input_size[0])

    @torch.no_grad()
    def __call__(self, crops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """B x 3 x h x w BGR teacher crops -> depth (B x 1 x mh x mw), normals (B x 3 x ...)."""
        if tuple(crops.shape[-2:]) != (self.teacher_wh[1], self.teacher_wh[0]):
            raise ValueError(f'online geometric teacher: crops are {tuple(crops.shape[-2:])} '
                             f'(h, w), the teacher input is {self.teacher.input_size}')
        self.teacher.to(crops.device)
        with torch.autocast(device_type=crops.device.type, enabled=False):
            depth, normal = self.teacher(crops)
            depth = resample_to_map(depth, self.teacher_wh, self.map_size)
            normal = unit_vectors(resample_to_map(normal, self.teacher_wh, self.map_size))
        return depth, normal
