"""Hybrid Teacher gating: trust Teacher A's pseudo-label, or fall back to Teacher B.

Per unlabeled sample, Teacher A (the EMA teacher) is trusted when its confidence and its
Kinematic Plausibility Score both clear their thresholds:

    use_teacher_a = (conf >= thr_conf) & (kps >= thr_kps)

``conf`` is the mean over keypoints of Teacher A's heatmap peaks; ``kps`` is the KPS of its
decoded keypoints (``score.py``). Trusted samples train the student with Teacher A's hard
pseudo-label (L_cons); the others get Teacher B, the ddp_prior's correction of the student's
own prediction, which only ever enters L_dev / soft targets. ``level='keypoint'`` keeps the
same rule per keypoint (conf per keypoint, the pose's KPS) for a later keypoint-level gate.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from mmpose.registry import MODELS
from torch import nn

from .score import heatmap_peaks


@dataclass
class GateDecision:
    """What the gate decided, and why (for logging and the gating report)."""

    use_teacher_a: torch.Tensor  # B (sample level) or B x K (keypoint level), bool
    conf: torch.Tensor  # B: mean heatmap peak
    keypoint_conf: torch.Tensor  # B x K
    kps: torch.Tensor  # B

    @property
    def num_teacher_a(self) -> int:
        return int(self.use_teacher_a.any(-1).sum() if self.use_teacher_a.dim() == 2
                   else self.use_teacher_a.sum())

    @property
    def num_teacher_b(self) -> int:
        return int(self.use_teacher_a.shape[0]) - self.num_teacher_a


@MODELS.register_module()
class HybridGate(nn.Module):
    """Sample-level (default) or keypoint-level Teacher A / Teacher B gate.

    Args:
        kps: config of the ``KinematicPlausibilityScore`` module.
        thr_conf: threshold on Teacher A's confidence (mean heatmap peak).
        thr_kps: threshold on Teacher A's KPS.
        level: ``'sample'`` or ``'keypoint'``.
    """

    def __init__(self, kps: dict, thr_conf: float = 0.5, thr_kps: float = 0.5,
                 level: str = 'sample') -> None:
        super().__init__()
        if level not in ('sample', 'keypoint'):
            raise ValueError(f"HybridGate.level must be 'sample' or 'keypoint', got {level!r}")
        self.kps = MODELS.build(kps)
        self.thr_conf, self.thr_kps, self.level = float(thr_conf), float(thr_kps), level

    @torch.no_grad()
    def forward(self, teacher_heatmaps: torch.Tensor,
                teacher_coords: torch.Tensor) -> GateDecision:
        """``teacher_heatmaps`` B x K x H x W, ``teacher_coords`` B x K x 2 (any frame: KPS
        is scale-invariant)."""
        keypoint_conf = heatmap_peaks(teacher_heatmaps).clamp(0, 1)
        conf = keypoint_conf.mean(-1)
        kps = self.kps(teacher_coords.float(), keypoint_scores=keypoint_conf).kps
        if self.level == 'sample':
            use_a = (conf >= self.thr_conf) & (kps >= self.thr_kps)
        else:
            use_a = (keypoint_conf >= self.thr_conf) & (kps >= self.thr_kps)[:, None]
        return GateDecision(use_teacher_a=use_a, conf=conf, keypoint_conf=keypoint_conf, kps=kps)
