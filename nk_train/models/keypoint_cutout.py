"""Keypoint-centred cutout of the student's strong views, placed by Teacher A.

Random occlusion (``CoarseDropout`` in the strong pipeline) mostly hides background. Hiding
the body parts themselves makes the student's view much harder than the teacher's, which is
the easy-to-hard gap that semi-supervised pose training depends on (Xie et al., "An Empirical
Study of the Collapsing Problem in Semi-Supervised 2D Human Pose Estimation", ICCV 2021). The
unlabeled crops carry no keypoints, so the patches go where Teacher A finds them on the weak
view: the strong views share the weak view's geometry, so its heatmap peaks are the keypoints'
positions in the strong view too. This needs the teacher's output, hence it runs in the
training step and not in the data pipeline.
"""
from __future__ import annotations

import torch
from torch import Tensor


def keypoint_cutout(images: Tensor, teacher_heatmaps: Tensor, num: int, size: float,
                    conf_thr: float) -> Tensor:
    """``images`` (B, C, H, W) with ``num`` patches per crop set to 0 (the normalised mean).

    Each patch is ``size`` x the crop's width by ``size`` x its height, centred on a keypoint
    drawn at random, without repetition, among those whose teacher peak is >= ``conf_thr``
    (a crop with fewer such keypoints gets fewer patches; 0 keeps it whole). Heatmap pixel
    ``i`` sits at input pixel ``i * (W - 1) / (w - 1)`` (the UDP codec's grid). ``num`` 0
    returns ``images`` itself.
    """
    if num <= 0:
        return images
    if not 0 < size <= 1:
        raise ValueError(f'keypoint cutout: size must be in (0, 1], got {size}')
    b, k, h, w = teacher_heatmaps.shape
    height, width = images.shape[-2:]
    peaks, flat = teacher_heatmaps.detach().flatten(2).max(-1)  # (B, K)
    draw = torch.rand(b, k, device=images.device)
    draw = draw.masked_fill(peaks < conf_thr, -1.0)
    score, chosen = draw.topk(min(num, k), dim=1)  # (B, n): random eligible keypoints
    valid = score >= 0
    cx = (flat % w).gather(1, chosen).float() * (width - 1) / max(w - 1, 1)
    cy = (flat // w).gather(1, chosen).float() * (height - 1) / max(h - 1, 1)
    xs = torch.arange(width, device=images.device, dtype=torch.float32)
    ys = torch.arange(height, device=images.device, dtype=torch.float32)
    in_x = (xs[None, None, :] - cx[..., None]).abs() <= size * width / 2  # (B, n, W)
    in_y = (ys[None, None, :] - cy[..., None]).abs() <= size * height / 2  # (B, n, H)
    hidden = (in_y[..., :, None] & in_x[..., None, :] & valid[..., None, None]).any(1)
    return images.masked_fill(hidden[:, None], 0.0)
