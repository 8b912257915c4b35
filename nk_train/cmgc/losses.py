"""Cross-Modal Geometric Consistency (CMGC) losses between 2D keypoints and the geometric
teacher's relative depth and surface normals.

Inputs, all for exactly the view the student saw, on the map grid (pixel index frame,
integer = pixel centre; the maps live on the heatmap grid, so heatmap coordinates are used
directly): ``coords`` B x K x 2 keypoints, ``weights`` B x K, ``depth`` B x 1 x h x w,
``normal`` B x 3 x h x w unit vectors in the loss frame (x image right, y image down, z away
from the camera, the direction depth grows), ``valid`` B x 1 x h x w in {0, 1} (the teacher's
foreground inside the crop). Limbs are the dataset_info skeleton edges (the ones KPS uses).
Float32 with autocast off: square roots and normalisations, which bf16 gets visibly wrong.

What the depth map can say. Sapiens' depth model is trained on each image's foreground depth
min-max normalised to [0, 1] (background unsupervised): its output is ``d = a Z + b`` with an
unknown per-crop scale ``a > 0`` and shift ``b``. Under weak perspective (the infant's depth
extent is small against its distance) the 3D length of limb e = (i, j) is proportional to

    L_e(s) = sqrt(l_e^2 + s^2 dz_e^2),   l_e = |p_i - p_j| (pixels),  dz_e = d_i - d_j,

with ``s = f / (Z_mean a)`` (pixels per unit of relative depth): one unknown per crop, and the
shift ``b`` cancels in ``dz``. So ``s`` is fitted per sample:

``L_geo_depth`` (limb rigidity): ``min_s Var_w[log L_e(s) - log t_e]``, the weighted variance
over the pose's counted limbs of the log-ratio to the reference proportions ``t`` (zero iff the
depth-compensated limbs are proportional to ``t``, whatever the pose's size). ``s`` is searched
as ``s = rho * mean_w(l) / mean_w(|dz|)`` over ``rho`` = 0 and ``rho_steps`` log-spaced values
up to ``rho_max`` (the depth-induced part of a limb at most ``rho_max`` times its 2D length on
average), then refined by a golden-section search between the best grid point's neighbours;
it is detached (at the minimum the gradient with respect to ``s`` is zero). The term is
therefore invariant to an affine change of the depth map and to the pose's scale, and never
above the 2D-only proportion term (``rho = 0`` is a candidate: the floor). When the pose's
mean limb depth difference is below ``min_depth_contrast`` times the crop's valid depth range,
the depth carries no information about it and ``s = 0``.

Reference proportions ``t``: by default a high quantile (``length_quantile``, 0.9) of the
labeled 2D limb lengths normalised by each pose's own scale. They are a biased 3D reference:
foreshortening only ever shortens a limb, so its upper 2D quantile approaches the
unforeshortened length when the limb is often seen parallel to the image (infants on their
back, camera above), but the per-pose scale is itself measured on foreshortened limbs. Give 3D
proportions from another source (anthropometric tables, 3D labels) as ``reference_lengths``
(limb name -> length, any unit) and they replace the 2D statistics.

``L_geo_normal`` (surface tangency): limbs lie along the body surface, so a limb's 3D direction
``v_e = (dx, dy, s dz) / |.|`` (with the fitted ``s``) should be orthogonal to the normal
``n`` at the limb's midpoint: the weighted mean of ``(v_e . n)^2``. Without depth contrast
(``s = 0``) ``v_e`` lies in the image plane and only ``n_x, n_y`` act.

Validity: a keypoint counts only where its whole bilinear neighbourhood is valid (so it never
samples background or the black border of a rotated crop), a limb only when both ends and its
midpoint count; masked keypoints change neither term.
"""
from __future__ import annotations

import math
from typing import Mapping

import torch
import torch.nn.functional as F
from mmpose.registry import MODELS
from torch import nn

from ..kps.stats import load_skeleton_stats, quantile_key
from ..paths import require_project_file
from ..skeleton import load_skeleton

EPS = 1e-6
VALID_MIN = 1.0 - 1e-3  # bilinear sample of the {0, 1} mask: 1 iff all 4 neighbours are valid
TERMS = ('loss_geo_depth', 'loss_geo_normal')
GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


def sample_maps(maps: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of ``maps`` (B x C x h x w) at ``points`` (B x P x 2, pixel index
    frame) -> B x P x C. Points outside the map are clamped to its border."""
    h, w = maps.shape[-2:]
    gx = points[..., 0] * (2.0 / max(w - 1, 1)) - 1.0
    gy = points[..., 1] * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack([gx, gy], dim=-1).unsqueeze(2)  # B x P x 1 x 2
    out = F.grid_sample(maps, grid, mode='bilinear', padding_mode='border', align_corners=True)
    return out.squeeze(-1).transpose(1, 2)


def weighted_var(r: torch.Tensor, w: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Weighted variance of ``r`` along ``dim`` (weights broadcast against ``r``)."""
    wsum = w.sum(dim, keepdim=True).clamp_min(EPS)
    mean = (w * r).sum(dim, keepdim=True) / wsum
    return ((w * (r - mean) ** 2).sum(dim, keepdim=True) / wsum).squeeze(dim)


@MODELS.register_module()
class CMGCLoss(nn.Module):
    """The CMGC terms; ``forward`` returns the requested ones of ``TERMS`` (and
    ``geo_depth_ratio``, the mean fitted ``rho``, for the log).

    Args:
        stats_file: skeleton statistics (``stats/skeleton_stats.json``).
        length_quantile: which labeled quantile gives the reference proportions (None: the
            fitted template).
        reference_lengths: 3D limb proportions (``'left_hip-left_knee'`` -> length) that
            replace the 2D statistics; limbs missing from it are not counted.
        rho_max, rho_steps: the search range of the depth scale (module docstring).
        min_depth_contrast: below this fraction of the crop's valid depth range the pose's
            limb depth differences are treated as no information (``s = 0``).
        dataset_info: keypoint set file (default: the infant COCO-17 file).
    """

    def __init__(self, stats_file: str, length_quantile: float | None = 0.9,
                 reference_lengths: Mapping[str, float] | None = None, rho_max: float = 10.0,
                 rho_steps: int = 31, min_depth_contrast: float = 1e-3,
                 dataset_info: str | None = None) -> None:
        super().__init__()
        skeleton = load_skeleton(dataset_info)
        if reference_lengths is not None:
            unknown = set(reference_lengths) - set(skeleton.edge_names)
            if unknown:
                raise ValueError(f'CMGCLoss.reference_lengths: unknown limbs {sorted(unknown)}; '
                                 f'limbs are {list(skeleton.edge_names)}')
            ref = torch.tensor([float(reference_lengths.get(n, math.nan))
                                for n in skeleton.edge_names])
        else:
            stats = load_skeleton_stats(require_project_file(
                stats_file, 'CMGCLoss stats_file', 'Write it with tools/compute_kps_stats.py.'),
                skeleton)
            ref = stats.template if length_quantile is None else \
                stats.len_quantiles[quantile_key(length_quantile)]
        if rho_max <= 0 or rho_steps < 1 or not 0 <= min_depth_contrast < 1:
            raise ValueError('CMGCLoss: need rho_max > 0, rho_steps >= 1, '
                             '0 <= min_depth_contrast < 1')
        known = torch.isfinite(ref) & (ref > 0)
        self.min_depth_contrast = float(min_depth_contrast)
        self.register_buffer('edges', torch.tensor(skeleton.edges, dtype=torch.long)[known],
                             persistent=False)
        self.register_buffer('log_ref', ref[known].float().log(), persistent=False)
        rho = torch.logspace(math.log10(rho_max) - 3.0, math.log10(rho_max), rho_steps)
        self.register_buffer('rho_grid', torch.cat([torch.zeros(1), rho]), persistent=False)

    def forward(self, coords: torch.Tensor, weights: torch.Tensor, depth: torch.Tensor,
                normal: torch.Tensor | None, valid: torch.Tensor | None = None,
                terms: tuple[str, ...] = TERMS) -> dict[str, torch.Tensor]:
        unknown = set(terms) - set(TERMS)
        if unknown:
            raise ValueError(f'CMGCLoss: unknown terms {sorted(unknown)}; known: {TERMS}')
        if not terms:
            return {}
        if not bool(torch.isfinite(coords).all()):  # grid_sample on NaN crashes the process
            raise FloatingPointError('CMGCLoss: non-finite keypoints')
        with torch.autocast(device_type=coords.device.type, enabled=False):
            coords, weights, depth = coords.float(), weights.float(), depth.float()
            valid = torch.ones_like(depth) if valid is None else valid.float()
            vec, dz, w, mid = self._limbs(coords, weights, depth, valid)
            scale, rho = self._fit_scale(vec, dz, w, self._depth_range(depth, valid))
            losses: dict[str, torch.Tensor] = {'geo_depth_ratio': rho.mean().detach()}
            if 'loss_geo_depth' in terms:
                losses['loss_geo_depth'] = self._depth_term(vec, dz, w, scale)
            if 'loss_geo_normal' in terms:
                losses['loss_geo_normal'] = self._normal_term(vec, dz, w, mid, scale,
                                                              normal.float())
        return losses

    def _limbs(self, coords, weights, depth, valid):
        """Per-limb 2D vectors, depth differences, weights (masked) and midpoints (B x E)."""
        i, j = self.edges[:, 0], self.edges[:, 1]
        mid = 0.5 * (coords[:, i] + coords[:, j])  # B x E x 2
        with torch.no_grad():
            kp_ok = (sample_maps(valid, coords.detach())[..., 0] >= VALID_MIN).float()
            mid_ok = (sample_maps(valid, mid.detach())[..., 0] >= VALID_MIN).float()
        d = sample_maps(depth, coords)[..., 0]  # B x K
        w = weights[:, i] * weights[:, j] * kp_ok[:, i] * kp_ok[:, j] * mid_ok
        return coords[:, i] - coords[:, j], d[:, i] - d[:, j], w, mid

    @staticmethod
    def _depth_range(depth: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """max - min of each map's valid depth (B,); 0 where nothing is valid."""
        inside = valid > 0.5
        hi = torch.where(inside, depth, torch.full_like(depth, -math.inf)).flatten(1).amax(1)
        lo = torch.where(inside, depth, torch.full_like(depth, math.inf)).flatten(1).amin(1)
        return torch.where(inside.flatten(1).any(1), hi - lo, torch.zeros_like(hi))

    def _log_ratio(self, l2: torch.Tensor, dz: torch.Tensor, scale: torch.Tensor
                   ) -> torch.Tensor:
        """``log L_e(s) - log t_e``; limbs on dim 1, the other dims broadcast."""
        length2 = l2 + (scale * dz) ** 2
        log_ref = self.log_ref.view(1, -1, *([1] * (length2.dim() - 2)))
        return 0.5 * torch.log(length2 + EPS) - log_ref

    @torch.no_grad()
    def _fit_scale(self, vec, dz, w, depth_range):
        """Per-sample depth scale ``s`` (B,) and its ``rho`` (B,), detached (docstring)."""
        wsum = w.sum(-1).clamp_min(EPS)
        mean_l = (w * vec.norm(dim=-1)).sum(-1) / wsum
        mean_dz = (w * dz.abs()).sum(-1) / wsum
        unit = mean_l / mean_dz.clamp_min(EPS)  # s per unit of rho
        l2 = (vec ** 2).sum(-1)[..., None]

        def objective(rho: torch.Tensor) -> torch.Tensor:  # B x G -> B x G
            r = self._log_ratio(l2, dz[..., None], (rho * unit[:, None])[:, None, :])
            return weighted_var(r, w[..., None])

        grid = self.rho_grid[None].expand(len(w), -1)
        best = objective(grid).argmin(-1)  # B
        last = len(self.rho_grid) - 1
        lo = grid.gather(1, (best - 1).clamp(0, last)[:, None])[:, 0]
        hi = grid.gather(1, (best + 1).clamp(0, last)[:, None])[:, 0]
        for _ in range(20):  # golden-section search between the grid neighbours
            a, b = hi - GOLDEN * (hi - lo), lo + GOLDEN * (hi - lo)
            fa, fb = objective(torch.stack([a, b], -1)).unbind(-1)
            hi = torch.where(fa < fb, b, hi)
            lo = torch.where(fa < fb, lo, a)
        rho = 0.5 * (lo + hi)
        # The bracket may hold more than one minimum: never end above the best grid point.
        on_grid = grid.gather(1, best[:, None])[:, 0]
        f_rho, f_grid = objective(torch.stack([rho, on_grid], -1)).unbind(-1)
        rho = torch.where(f_rho <= f_grid, rho, on_grid)
        informative = mean_dz > self.min_depth_contrast * depth_range
        rho = torch.where(informative, rho, torch.zeros_like(rho))
        return rho * unit, rho

    def _depth_term(self, vec, dz, w, scale):
        """Mean over samples with two or more counted limbs of the log-ratio variance."""
        var = weighted_var(self._log_ratio((vec ** 2).sum(-1), dz, scale[:, None]), w)
        counted = ((w > 0).sum(-1) >= 2).float()  # a variance needs two limbs
        return (var * counted).sum() / counted.sum().clamp_min(1.0)

    def _normal_term(self, vec, dz, w, mid, scale, normal):
        n = F.normalize(sample_maps(normal, mid), dim=-1, eps=EPS)  # B x E x 3
        v = F.normalize(torch.cat([vec, (scale[:, None] * dz)[..., None]], dim=-1), dim=-1,
                        eps=EPS)
        cos2 = (v * n).sum(-1) ** 2
        return (w * cos2).sum() / w.sum().clamp_min(EPS)
