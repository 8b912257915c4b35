"""Cross-Modal Geometric Consistency (CMGC) losses between 2D keypoints and depth/normal maps.

Both losses take the student's differentiable keypoints ``coords`` (B x K x 2) in the pixel
index frame of the depth/normal maps (integer = pixel centre; the maps are stored on the
heatmap grid, so heatmap coordinates can be used directly), per-keypoint weights (B x K),
and the geometric teacher's maps for exactly the view the student saw: depth (B x 1 x h x w)
and unit normals (B x 3 x h x w). Axes: x to the image right, y down, z = depth, away from
the camera. Limbs are the dataset_info skeleton edges (the ones KPS uses).

They always run in float32 with autocast off: they take square roots and normalise vectors,
which bf16 gets visibly wrong.

``L_geo_depth`` (limb rigidity). Limb e = (i, j) has 2D length ``l_e`` and depth difference
``dz_e = D(p_i) - D(p_j)``; with ``depth_scale`` (pixels per depth unit at the crop: focal
length in map pixels over the subject's mean depth for metric depth maps) its
depth-compensated length is ``L_e = sqrt(l_e^2 + (depth_scale * dz_e)^2)``. Compared
scale-invariantly with the reference limb proportions ``t_e`` of the labeled statistics:
``r_e = log L_e - log t_e`` and the loss is the weighted variance of ``r_e`` over the pose's
limbs (zero iff the compensated limbs are proportional to ``t``, whatever the pose's size).
The reference is a high quantile of the labeled normalised lengths (default 0.9): 2D labels
are foreshortened, so their upper range is the better estimate of a limb's full length.

``L_geo_normal`` (surface tangency). Limbs lie along the body surface, so a limb's 3D
direction ``v_e = (dx, dy, depth_scale * dz)/|.|`` should be orthogonal to the surface normal
``n`` sampled at the limb's midpoint: the loss is the weighted mean of ``(v_e . n)^2``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from mmpose.registry import MODELS
from torch import nn

from ..kps.stats import load_skeleton_stats, quantile_key
from ..paths import require_project_file
from ..skeleton import load_skeleton

EPS = 1e-6
TERMS = ('loss_geo_depth', 'loss_geo_normal')


def sample_maps(maps: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of ``maps`` (B x C x h x w) at ``points`` (B x P x 2, pixel index
    frame) -> B x P x C. Points outside the map are clamped to its border."""
    h, w = maps.shape[-2:]
    gx = points[..., 0] * (2.0 / max(w - 1, 1)) - 1.0
    gy = points[..., 1] * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack([gx, gy], dim=-1).unsqueeze(2)  # B x P x 1 x 2
    out = F.grid_sample(maps, grid, mode='bilinear', padding_mode='border', align_corners=True)
    return out.squeeze(-1).transpose(1, 2)


def _limb_terms(coords: torch.Tensor, weights: torch.Tensor, depth: torch.Tensor,
                edges: torch.Tensor, depth_scale: float):
    """Per-limb 2D vectors, scaled depth differences and weights (B x E each)."""
    i, j = edges[:, 0], edges[:, 1]
    d = sample_maps(depth, coords)[..., 0]  # B x K
    vec = coords[:, i] - coords[:, j]  # B x E x 2
    dz = depth_scale * (d[:, i] - d[:, j])  # B x E
    w = weights[:, i] * weights[:, j]
    return vec, dz, w


@MODELS.register_module()
class CMGCLoss(nn.Module):
    """The CMGC terms; ``forward`` returns the requested ones of ``TERMS``
    (``loss_geo_depth``, ``loss_geo_normal``) and computes nothing for the others.

    Args:
        stats_file: skeleton statistics (``stats/skeleton_stats.json``).
        depth_scale: pixels per depth unit (see module docstring).
        length_quantile: which labeled quantile is the reference limb length (None: the
            fitted template).
        dataset_info: keypoint set file (default: the infant COCO-17 file).
    """

    def __init__(self, stats_file: str, depth_scale: float = 1.0,
                 length_quantile: float | None = 0.9, dataset_info: str | None = None) -> None:
        super().__init__()
        skeleton = load_skeleton(dataset_info)
        stats = load_skeleton_stats(require_project_file(
            stats_file, 'CMGCLoss stats_file', 'Write it with tools/compute_kps_stats.py.'),
            skeleton)
        ref = stats.template if length_quantile is None else \
            stats.len_quantiles[quantile_key(length_quantile)]
        known = torch.isfinite(ref) & (ref > 0)
        self.depth_scale = float(depth_scale)
        self.register_buffer('edges', torch.tensor(skeleton.edges, dtype=torch.long)[known],
                             persistent=False)
        self.register_buffer('log_ref', ref[known].float().log(), persistent=False)

    def forward(self, coords: torch.Tensor, weights: torch.Tensor, depth: torch.Tensor,
                normal: torch.Tensor | None, terms: tuple[str, ...] = TERMS
                ) -> dict[str, torch.Tensor]:
        unknown = set(terms) - set(TERMS)
        if unknown:
            raise ValueError(f'CMGCLoss: unknown terms {sorted(unknown)}; known: {TERMS}')
        losses: dict[str, torch.Tensor] = {}
        if not terms:
            return losses
        if not bool(torch.isfinite(coords).all()):  # grid_sample on NaN crashes the process
            raise FloatingPointError('CMGCLoss: non-finite keypoints')
        with torch.autocast(device_type=coords.device.type, enabled=False):
            coords, weights = coords.float(), weights.float()
            vec, dz, w = _limb_terms(coords, weights, depth.float(), self.edges,
                                     self.depth_scale)
            if 'loss_geo_depth' in terms:
                losses['loss_geo_depth'] = self._depth_term(vec, dz, w)
            if 'loss_geo_normal' in terms:
                losses['loss_geo_normal'] = self._normal_term(coords, vec, dz, w,
                                                              normal.float())
        return losses

    def _depth_term(self, vec: torch.Tensor, dz: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        length = torch.sqrt((vec ** 2).sum(-1) + dz ** 2 + EPS)
        r = length.log() - self.log_ref  # B x E
        wsum = w.sum(-1)
        mean = (w * r).sum(-1) / wsum.clamp_min(EPS)
        var = (w * (r - mean[:, None]) ** 2).sum(-1) / wsum.clamp_min(EPS)
        has = (wsum > EPS).float()
        return (var * has).sum() / has.sum().clamp_min(1.0)

    def _normal_term(self, coords: torch.Tensor, vec: torch.Tensor, dz: torch.Tensor,
                     w: torch.Tensor, normal: torch.Tensor) -> torch.Tensor:
        i, j = self.edges[:, 0], self.edges[:, 1]
        mid = 0.5 * (coords[:, i] + coords[:, j])  # B x E x 2
        n = F.normalize(sample_maps(normal, mid), dim=-1, eps=EPS)  # B x E x 3
        v = F.normalize(torch.cat([vec, dz[..., None]], dim=-1), dim=-1, eps=EPS)
        cos2 = (v * n).sum(-1) ** 2
        return (w * cos2).sum() / w.sum().clamp_min(EPS)
