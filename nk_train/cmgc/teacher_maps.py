"""The teacher's outputs on the map grid: what the cache stores and the online path computes.

``teacher_maps`` runs the geometric teacher on crops cut at its input size and resamples
depth, normals and validity to the map grid (the heatmap grid, UDP-aligned with the student
crop), so precompute (``cache_shard.py``) and the online CMGC teacher produce the same values. Validity is 1 where every teacher pixel that contributes to a map pixel lies inside
the original image (``inside`` is 1 there, 0 on the black border of a rotated or shifted crop)
and, when the teacher has a foreground rule, on the foreground.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch

from .geometric_teacher import GeometricTeacher, unit_vectors

VALID_MIN = 1.0 - 1e-3  # a resampled {0, 1} mask: 1 only where its whole support is 1


@lru_cache(maxsize=16)
def resample_weights(out_len: int, in_len: int, map_len: int) -> np.ndarray:
    """1-D weights (map_len x out_len) taking one axis of a teacher output to the map grid.

    Map pixel u sits at teacher-input pixel x = u (in_len-1)/(map_len-1) (UDP: same region as
    the crop, corner pixels aligned); the teacher output covers its input with half-pixel
    alignment, so x lands at output coordinate (x + 0.5) out_len/in_len - 0.5 (clamped to the
    border). The value there is bilinear between the two nearest output pixels, after a box
    prefilter about one map pixel wide (odd width, average over the pixels inside the map).
    """
    box = _odd_box(out_len / map_len)
    half = box // 2
    filt = np.zeros((out_len, out_len))
    for j in range(out_len):
        lo, hi = max(0, j - half), min(out_len, j + half + 1)
        filt[j, lo:hi] = 1.0 / (hi - lo)
    x_in = np.arange(map_len) * ((in_len - 1) / (map_len - 1))
    x_out = np.clip((x_in + 0.5) * out_len / in_len - 0.5, 0.0, out_len - 1)
    j0 = np.floor(x_out).astype(int)
    j1 = np.minimum(j0 + 1, out_len - 1)
    a = (x_out - j0)[:, None]
    return (1.0 - a) * filt[j0] + a * filt[j1]


def _odd_box(factor: float) -> int:
    k = int(factor)
    return k if k % 2 == 1 else max(1, k - 1)


def resample_to_map(out: torch.Tensor, teacher_wh: tuple[int, int],
                    map_size: tuple[int, int]) -> torch.Tensor:
    """Teacher output (B x C x Ho x Wo) -> values on the map grid (B x C x mh x mw), as two
    small matrix products (see ``resample_weights``)."""
    ho, wo = out.shape[-2:]
    (wt, ht), (mw, mh) = teacher_wh, map_size
    wy = torch.from_numpy(resample_weights(ho, ht, mh)).to(out.device, torch.float32)
    wx = torch.from_numpy(resample_weights(wo, wt, mw)).to(out.device, torch.float32)
    return wy @ (out.float() @ wx.T)


@torch.no_grad()
def teacher_maps(teacher: GeometricTeacher, crops: torch.Tensor, inside: torch.Tensor,
                 map_size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Depth (B x 1), unit normals (B x 3) and validity (B x 1, {0, 1} float) on the map grid
    (mh x mw) of BGR crops (B x 3 x h x w, the teacher's input size) whose pixels inside the
    original image are marked by ``inside`` (B x h x w, 1 inside)."""
    teacher_wh = (teacher.input_size[1], teacher.input_size[0])
    with torch.autocast(device_type=crops.device.type, enabled=False):
        out = teacher(crops)
        depth = resample_to_map(out.depth, teacher_wh, map_size)
        normal = unit_vectors(resample_to_map(out.normal, teacher_wh, map_size))
        inside = inside[:, None].to(depth.device, torch.float32)
        valid = resample_to_map(inside, teacher_wh, map_size) >= VALID_MIN
        if out.foreground is not None:
            valid &= resample_to_map(out.foreground, teacher_wh, map_size) >= VALID_MIN
    return depth, normal, valid.float()
