"""L_cons: the student's strong-view heatmaps follow Teacher A's weak-view heatmaps.

Both views are warped with the same affine, so the two heatmaps live on the same grid and
can be compared pixel by pixel. A keypoint enters the loss only when the teacher is
confident about it (heatmap peak >= ``conf_thr``), the minimal pseudo-label filter; the
hybrid gating added later decides on top of this.

Normalisation: the masked per-keypoint loss is summed and divided by *all* B*K keypoints
(as FixMatch divides by the whole unlabeled batch, and as mmpose's ``KeypointMSELoss``
averages over every keypoint), so the loss shrinks when few keypoints pass the filter
instead of over-weighting the few that do.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from mmpose.registry import MODELS
from torch import Tensor, nn

from ..kps.score import heatmap_peaks

MODES = ('mse', 'kl')
TARGETS = ('soft', 'hard')


@dataclass
class ConsistencyOutput:
    """The loss and what it kept: ``keep`` and ``confidence`` are (B, K)."""

    loss: Tensor
    keep: Tensor
    confidence: Tensor


def gaussian_at_peak(heatmaps: Tensor, sigma: float) -> Tensor:
    """Hard pseudo-label: a unit-peak Gaussian re-rendered at each heatmap's argmax.

    Rendered on the heatmap's own pixel grid (the UDP convention: pixel centres at integer
    coordinates) and cut to the same (6 sigma + 1)-pixel square window, so it equals what
    ``UDPHeatmap`` encodes for a keypoint at that pixel.
    """
    b, k, h, w = heatmaps.shape
    idx = heatmaps.flatten(2).argmax(dim=-1)  # (B, K)
    y0 = torch.div(idx, w, rounding_mode='floor').to(heatmaps.dtype)
    x0 = (idx % w).to(heatmaps.dtype)
    ys = torch.arange(h, device=heatmaps.device, dtype=heatmaps.dtype).view(1, 1, h, 1)
    xs = torch.arange(w, device=heatmaps.device, dtype=heatmaps.dtype).view(1, 1, 1, w)
    dx, dy = xs - x0[..., None, None], ys - y0[..., None, None]
    inside = torch.maximum(dx.abs(), dy.abs()) <= 3 * sigma
    return torch.exp(-(dx ** 2 + dy ** 2) / (2.0 * sigma ** 2)) * inside


@MODELS.register_module()
class HeatmapConsistencyLoss(nn.Module):
    """Confidence-filtered heatmap consistency between student (strong) and teacher (weak).

    Args:
        mode: ``'mse'`` (pixel-wise squared error, mean over pixels) or ``'kl'``
            (KL(teacher || student) between spatial softmax distributions at temperature
            ``kl_temperature``, scaled by T^2 so gradients keep their size across T).
        conf_thr: keep a keypoint when the teacher's heatmap peak is >= this value.
        target: ``'soft'`` uses the teacher heatmap as it is; ``'hard'`` re-renders a
            Gaussian of width ``sigma`` (heatmap pixels) at the teacher's peak.
        sigma: Gaussian width of hard targets; use the codec's sigma.
        kl_temperature: softmax temperature of the ``'kl'`` mode.
    """

    def __init__(self, mode: str = 'mse', conf_thr: float = 0.5, target: str = 'soft',
                 sigma: float = 2.0, kl_temperature: float = 0.1) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f'HeatmapConsistencyLoss: mode must be one of {MODES}, got {mode!r}')
        if target not in TARGETS:
            raise ValueError(
                f'HeatmapConsistencyLoss: target must be one of {TARGETS}, got {target!r}')
        if sigma <= 0 or kl_temperature <= 0:
            raise ValueError('HeatmapConsistencyLoss: sigma and kl_temperature must be > 0, '
                             f'got {sigma}, {kl_temperature}')
        self.mode = mode
        self.conf_thr = float(conf_thr)
        self.target = target
        self.sigma = float(sigma)
        self.kl_temperature = float(kl_temperature)

    def forward(self, student_heatmaps: Tensor, teacher_heatmaps: Tensor,
                keep: Tensor | None = None) -> ConsistencyOutput:
        """``keep`` (B x K bool) replaces the confidence filter: the Hybrid gate passes the
        keypoints it gives to Teacher A."""
        if student_heatmaps.shape != teacher_heatmaps.shape or student_heatmaps.dim() != 4:
            raise ValueError('HeatmapConsistencyLoss: student and teacher heatmaps must both be '
                             f'(B, K, H, W) of one shape, got {tuple(student_heatmaps.shape)} '
                             f'and {tuple(teacher_heatmaps.shape)}')
        # float32 whatever the autocast state: tiny heatmap differences underflow in bf16.
        student = student_heatmaps.float()
        teacher = teacher_heatmaps.detach().float()
        confidence = heatmap_peaks(teacher)
        if keep is None:
            keep = confidence >= self.conf_thr
        elif keep.shape != confidence.shape:
            raise ValueError(f'HeatmapConsistencyLoss: keep mask {tuple(keep.shape)} does not '
                             f'match the (B, K) keypoints {tuple(confidence.shape)}')
        if self.target == 'hard':
            teacher = gaussian_at_peak(teacher, self.sigma)
        if self.mode == 'mse':
            per_keypoint = (student - teacher).pow(2).flatten(2).mean(dim=-1)
        else:
            t = self.kl_temperature
            log_p_student = F.log_softmax(student.flatten(2) / t, dim=-1)
            log_p_teacher = F.log_softmax(teacher.flatten(2) / t, dim=-1)
            per_keypoint = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(-1) * t * t
        loss = (per_keypoint * keep).sum() / keep.numel()
        return ConsistencyOutput(loss=loss, keep=keep, confidence=confidence)
