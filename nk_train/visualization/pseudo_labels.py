"""One unlabeled crop as the gate saw it: Teacher A's and Teacher B's poses, the gate's
inputs and decision, and the diagnostic label (reports only, never a training input).

``tools/visualize.py pseudo-labels`` fills these from ``tools/gating_report.py``'s prediction
loop; the gallery and the gating plots draw them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PseudoLabel:
    sample_id: int
    img_path: str
    affine: np.ndarray  # 2 x 3, original image -> model crop (the view the teacher saw)
    input_size: tuple[int, int]  # model crop (w, h)
    conf: float  # the gate's confidence: mean of Teacher A's heatmap peaks
    kps: float  # the gate's KPS of Teacher A's keypoints
    accepted: bool  # the gate gave the sample to Teacher A
    teacher_a: np.ndarray  # K x 2, original image pixels
    teacher_b: np.ndarray  # K x 2: the ddp_prior's correction of the student
    diagnostic: np.ndarray  # K x 3 (x, y, visibility), original image pixels
    oks_a: float  # OKS of Teacher A against the diagnostic label
    oks_b: float  # OKS of Teacher B against the diagnostic label


GROUP_ACCEPTED = 'Teacher A accepted'
GROUP_REJECTED = 'Teacher A rejected'
GROUP_WORST_KPS = 'lowest KPS'


def spread_by_oks(labels: list[PseudoLabel], n: int) -> list[PseudoLabel]:
    """``n`` samples evenly spaced in OKS rank, best first (the whole range, not the top)."""
    ranked = sorted(labels, key=lambda p: (-p.oks_a, p.sample_id))
    if len(ranked) <= n:
        return ranked
    return [ranked[int(i)] for i in np.linspace(0, len(ranked) - 1, n).round()]


def gallery_groups(labels: list[PseudoLabel], per_group: int) -> dict[str, list[PseudoLabel]]:
    """The gallery's rows: accepted and rejected samples spread over their OKS range, and the
    ``per_group`` samples with the lowest KPS (lowest first)."""
    if per_group < 1:
        raise ValueError(f'per_group must be >= 1, got {per_group}')
    return {
        GROUP_ACCEPTED: spread_by_oks([p for p in labels if p.accepted], per_group),
        GROUP_REJECTED: spread_by_oks([p for p in labels if not p.accepted], per_group),
        GROUP_WORST_KPS: sorted(labels, key=lambda p: (p.kps, p.sample_id))[:per_group],
    }
