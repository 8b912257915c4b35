"""Per-pose normalisation: the frame the prior sees poses in.

A pose arrives in pixels at any position and size. The prior models shape only, so each pose
is moved to its own frame before diffusion and moved back afterwards:

* centre = mean of the visible joints,
* scale  = RMS deviation of the visible joints from that centre, per coordinate
  (``sqrt(mean_k,axis (p - centre)^2)``), so a normalised pose has unit RMS coordinate.

Both use visible joints only, so missing joints (and whatever garbage sits at their
coordinates, NaN included) change neither. A pose with fewer than ``min_visible`` visible
joints, or whose visible joints (nearly) coincide, has no frame; it is reported as invalid
and callers leave it untouched rather than guessing.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch


@dataclass(frozen=True)
class NormalizationConfig:
    """How poses are normalised; stored in the checkpoint so inference matches training."""

    method: str = 'visible_mean_rms'
    min_visible: int = 3
    min_scale: float = 1e-6  # in input units (pixels); below this a pose has no usable scale

    def __post_init__(self) -> None:
        if self.method != 'visible_mean_rms':
            raise ValueError(f'unknown normalisation method {self.method!r}')
        if self.min_visible < 2:
            raise ValueError(f'min_visible must be >= 2 to define a scale, got {self.min_visible}')

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class PoseFrame:
    """Centre (B, 2), scale (B,) and validity (B,) of a batch of poses."""

    center: torch.Tensor
    scale: torch.Tensor
    valid: torch.Tensor


def check_pose_batch(coords: torch.Tensor, visibility: torch.Tensor,
                     num_keypoints: int | None = None) -> torch.Tensor:
    """Validate shapes and return the visibility as a bool (B, K) tensor."""
    if coords.ndim != 3 or coords.shape[-1] != 2:
        raise ValueError(f'coords must be (B, K, 2), got shape {tuple(coords.shape)}')
    if visibility.shape != coords.shape[:2]:
        raise ValueError(f'visibility must be (B, K) = {tuple(coords.shape[:2])}, '
                         f'got shape {tuple(visibility.shape)}')
    if num_keypoints is not None and coords.shape[1] != num_keypoints:
        raise ValueError(f'the prior was trained on {num_keypoints} keypoints, '
                         f'got {coords.shape[1]}')
    vis = visibility.to(device=coords.device)
    return vis if vis.dtype == torch.bool else vis > 0


def pose_frame(coords: torch.Tensor, visible: torch.Tensor,
               cfg: NormalizationConfig) -> PoseFrame:
    """Centre and scale of each pose from its visible joints (see module docstring)."""
    w = visible.to(coords.dtype)
    count = w.sum(dim=1)  # (B,)
    safe = torch.where(visible[..., None], coords, torch.zeros_like(coords))
    center = safe.sum(dim=1) / count.clamp(min=1)[:, None]
    dev = torch.where(visible[..., None], coords - center[:, None, :], torch.zeros_like(coords))
    scale = (dev.pow(2).sum(dim=(1, 2)) / (2 * count).clamp(min=1)).sqrt()
    valid = (count >= cfg.min_visible) & (scale > cfg.min_scale)
    scale = torch.where(valid, scale, torch.ones_like(scale))
    return PoseFrame(center=center, scale=scale, valid=valid)


def to_normalized(coords: torch.Tensor, visible: torch.Tensor, frame: PoseFrame) -> torch.Tensor:
    """Pixels -> pose frame; invisible joints become exactly 0."""
    x = (coords - frame.center[:, None, :]) / frame.scale[:, None, None]
    return torch.where(visible[..., None], x, torch.zeros_like(x))


def to_pixels(normed: torch.Tensor, frame: PoseFrame) -> torch.Tensor:
    """Pose frame -> pixels."""
    return normed * frame.scale[:, None, None] + frame.center[:, None, :]
