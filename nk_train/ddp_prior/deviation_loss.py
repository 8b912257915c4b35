"""L_dev and Teacher B: the student's keypoints against the ddp_prior's correction of them.

    L_dev = sum_{b,k} w_bk * || (y_bk - yhat_bk) / (W, H) ||^2 / (B * K)

``y`` are the student's differentiable strong-view keypoints (local soft-argmax of its
heatmaps, heatmap pixel frame), ``yhat = ddp_prior.denoise(y)`` is detached: the gradient moves
the student towards the prior's plausible pose, never the prior. Dividing by the heatmap size
(W, H) makes the term resolution-independent (a 1 % error costs the same at 48 x 64 and at
192 x 256), so lambda_dev transfers between the CPU and full configs. ``w`` selects the
samples/keypoints the term applies to (Teacher B's under gating, all otherwise; with
``dev_min_shift`` > 0 only those the prior moves that far, ``large_corrections``); like L_cons
the sum is divided by all B * K keypoints. Float32 with autocast off.
"""
from __future__ import annotations

from typing import Any, Mapping, Optional

import torch
from torch import Tensor

from .lazy import LazyPrior
from .prior import DDPPrior

DENOISE_KEYS = frozenset({'mode', 'noise_level', 'num_steps', 'num_samples', 'seed'})


def deviation_loss(coords: Tensor, prior_coords: Tensor, weights: Tensor,
                   heatmap_size: tuple[int, int]) -> Tensor:
    """``coords``/``prior_coords`` B x K x 2 (heatmap pixels), ``weights`` B x K,
    ``heatmap_size`` (w, h); returns the scalar L_dev (float32)."""
    if coords.shape != prior_coords.shape or coords.shape[:2] != weights.shape:
        raise ValueError(f'deviation_loss: coords {tuple(coords.shape)}, prior '
                         f'{tuple(prior_coords.shape)} and weights {tuple(weights.shape)} '
                         'disagree')
    with torch.autocast(device_type=coords.device.type, enabled=False):
        size = torch.tensor([float(heatmap_size[0]), float(heatmap_size[1])],
                            device=coords.device)
        diff = (coords.float() - prior_coords.detach().float()) / size
        per_keypoint = diff.pow(2).sum(-1)
        return (per_keypoint * weights.float()).sum() / weights.numel()


def large_corrections(coords: Tensor, prior_coords: Tensor, heatmap_size: tuple[int, int],
                      min_shift: float) -> Tensor:
    """B x K float mask: 1 where the prior moves a keypoint by at least ``min_shift`` (the norm
    of the correction over the heatmap size (W, H): the units of L_dev), else 0. The idea, not
    yet measured here: small corrections mostly pull a plausible pose towards the mean pose,
    a large one marks a keypoint that is likely wrong. ``min_shift`` 0 keeps every keypoint."""
    size = torch.tensor([float(heatmap_size[0]), float(heatmap_size[1])], device=coords.device)
    shift = ((coords.detach().float() - prior_coords.detach().float()) / size).norm(dim=-1)
    return (shift >= min_shift).float()


class PriorTeacher:
    """Teacher B: the frozen ddp_prior denoising the student's own keypoints.

    A plain object around the model's shared ``LazyPrior`` (a ``FrozenModel``): the prior's
    weights come from its own checkpoint, never from Stage1 checkpoints, the optimiser or the
    EMA, and the file is read on first use of ``prior`` (the Stage1 model asks for it when
    training starts), so evaluating a Stage1 checkpoint needs no prior.

    Args:
        prior: the prior (the Stage1 model's one instance, shared with the gate's KPS).
        denoise: keyword arguments of ``DDPPrior.denoise`` (mode, noise_level, ...).
    """

    def __init__(self, prior: LazyPrior, denoise: Optional[Mapping[str, Any]] = None) -> None:
        self.denoise_kwargs = dict(denoise or {})
        unknown = set(self.denoise_kwargs) - DENOISE_KEYS
        if unknown:
            raise ValueError(f'ddp_prior.denoise: unknown keys {sorted(unknown)}; known: '
                             f'{sorted(DENOISE_KEYS)}')
        self.lazy_prior = prior

    @property
    def prior(self) -> DDPPrior:
        return self.lazy_prior.get()

    def __call__(self, coords: Tensor) -> Tensor:
        """Denoised copy (B x K x 2, float32, detached) of ``coords``, every joint visible."""
        visible = torch.ones(coords.shape[:2], dtype=torch.bool, device=coords.device)
        return self.lazy_prior.get(coords.device).denoise(coords.detach(), visible,
                                                          **self.denoise_kwargs)
