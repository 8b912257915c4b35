"""Pose geometry shared by the statistics tool, the KPS and the CMGC losses.

All functions take batched tensors (``B x K x 2`` coordinates, ``B x K`` boolean visibility)
and work in whatever float dtype they are given: the statistics tool runs them in float64
on CPU, the scorer in float32 on the training device. Nothing here hard-codes a limb: edges
and angle triples come from :func:`nk_train.skeleton.load_skeleton`.

Scale normalisation (``median_limb_ratio``)
-------------------------------------------
A 2D pose's size depends on the camera distance, so limb lengths are divided by a per-pose
reference scale ``s = median_e(L_e / t_e)`` over the limbs ``e`` whose two endpoints are
labeled, where ``t`` is a per-limb template (typical relative limb lengths, estimated from the
labeled data by :func:`fit_length_template`). Why this rather than the alternatives:

* bbox diagonal / sqrt(area): needs a box, which a bare set of predicted coordinates does not
  carry, and an infant's box changes by a large factor between curled and stretched poses;
* median of torso limbs: only 4 limbs, which are often foreshortened in infants lying on
  their side, and naming the torso would hard-code limbs;
* median ratio to a template: uses every measurable limb, so a missing joint only removes
  terms from the median, and a single wrong or foreshortened limb barely moves it.

With fewer than ``min_limbs`` measurable limbs the scale is undefined (``scale_valid`` False).
"""
from __future__ import annotations

import torch

# Distances below this (in coordinate units) are treated as zero when a scale is used as a
# divisor, so a collapsed pose gives huge or zero normalised lengths instead of 0/0.
SCALE_EPS = 1e-6
# An angle is undefined when one of its two arms is shorter than this fraction of the extent
# of the pose's visible keypoints (e.g. two keypoints decoded onto the same pixel).
ANGLE_ARM_REL_EPS = 1e-3


def masked_median(values: torch.Tensor, mask: torch.Tensor,
                  dim: int = -1) -> tuple[torch.Tensor, torch.Tensor]:
    """Median of ``values`` where ``mask`` is True along ``dim`` (mean of the two middle
    values for an even count). Returns ``(median, count)``; the median is 0 where count is 0.
    """
    filled = torch.where(mask, values, torch.full_like(values, float('inf')))
    ordered, _ = torch.sort(filled, dim=dim)
    count = mask.sum(dim=dim, keepdim=True)
    lo = ((count - 1).clamp(min=0) // 2)
    hi = (count // 2).clamp(max=values.shape[dim] - 1)
    med = 0.5 * (ordered.gather(dim, lo) + ordered.gather(dim, hi))
    med = torch.where(count > 0, med, torch.zeros_like(med))
    return med.squeeze(dim), count.squeeze(dim)


def limb_lengths(coords: torch.Tensor, visible: torch.Tensor,
                 edges: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Euclidean length of every edge ``(i, j)``: ``(B x E lengths, B x E valid)``.

    A limb is valid when both endpoints are visible; invalid lengths are set to 0.
    """
    i, j = edges[:, 0], edges[:, 1]
    length = torch.linalg.vector_norm(coords[:, i] - coords[:, j], dim=-1)
    valid = visible[:, i] & visible[:, j]
    return torch.where(valid, length, torch.zeros_like(length)), valid


def reference_scale(lengths: torch.Tensor, valid: torch.Tensor, template: torch.Tensor,
                    min_limbs: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pose scale ``median_e(L_e / t_e)`` over valid limbs (see module docstring).

    ``template`` may hold NaN for limbs without statistics; those limbs are ignored.
    Returns ``(scale (B,), scale_valid (B,))``; the scale is 1 where it is not valid.
    """
    usable = valid & torch.isfinite(template)[None]
    ratio = lengths / torch.nan_to_num(template, nan=1.0)[None]
    scale, count = masked_median(ratio, usable, dim=-1)
    scale_valid = count >= min_limbs
    return torch.where(scale_valid, scale, torch.ones_like(scale)), scale_valid


def normalised_lengths(lengths: torch.Tensor, valid: torch.Tensor, scale: torch.Tensor,
                       scale_valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``L / s`` for valid limbs of poses with a valid scale: ``(B x E, B x E valid)``."""
    ok = valid & scale_valid[:, None]
    norm = lengths / scale.clamp(min=SCALE_EPS)[:, None]
    return torch.where(ok, norm, torch.zeros_like(norm)), ok


def joint_angles_deg(coords: torch.Tensor, visible: torch.Tensor,
                     triples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Unsigned angle in degrees ([0, 180]) at ``c`` between ``c->a`` and ``c->b`` for every
    triple ``(a, c, b)``: ``(B x A angles, B x A valid)``.

    ``atan2(|cross|, dot)`` is accurate at 0 and 180 degrees, where ``acos`` is not. An angle
    is valid when its three keypoints are visible and neither arm is degenerate (shorter than
    ``ANGLE_ARM_REL_EPS`` times the extent of the visible keypoints); invalid angles are 0.
    """
    a, c, b = triples[:, 0], triples[:, 1], triples[:, 2]
    u = coords[:, a] - coords[:, c]
    v = coords[:, b] - coords[:, c]
    cross = u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]
    dot = (u * v).sum(-1)
    angle = torch.rad2deg(torch.atan2(cross.abs(), dot))

    big = torch.full_like(coords[..., 0], float('inf'))
    lo = torch.where(visible, coords[..., 0], big).amin(-1), torch.where(
        visible, coords[..., 1], big).amin(-1)
    hi = torch.where(visible, coords[..., 0], -big).amax(-1), torch.where(
        visible, coords[..., 1], -big).amax(-1)
    extent = torch.maximum(hi[0] - lo[0], hi[1] - lo[1])
    extent = torch.where(torch.isfinite(extent), extent, torch.zeros_like(extent))
    min_arm = (ANGLE_ARM_REL_EPS * extent).clamp(min=SCALE_EPS)[:, None]
    valid = (visible[:, a] & visible[:, c] & visible[:, b]
             & (torch.linalg.vector_norm(u, dim=-1) > min_arm)
             & (torch.linalg.vector_norm(v, dim=-1) > min_arm))
    return torch.where(valid, angle, torch.zeros_like(angle)), valid


def fit_length_template(lengths: torch.Tensor, valid: torch.Tensor, min_limbs: int,
                        max_iters: int = 1000, tol: float = 1e-12
                        ) -> tuple[torch.Tensor, int]:
    """Per-limb template ``t`` for :func:`reference_scale`, estimated from labeled poses.

    Alternates ``t_e = median_n(L_ne / s_n)`` and ``s_n = median_e(L_ne / t_e)`` (poses with
    at least ``min_limbs`` valid limbs) until the scales change by less than ``tol``
    (relative), starting from ``s_n = median_e L_ne``. ``t`` is fixed up to a common factor,
    so it is normalised to geometric mean 1: the typical limb then has length ~1 in
    normalised units. Limbs never measured (or with median length 0) get NaN.
    Returns ``(template, iterations)``. Meant for float64 on CPU (deterministic); raises if it does not converge.
    """
    scale, count = masked_median(lengths, valid, dim=-1)
    use = count >= min_limbs
    if not bool(use.any()):
        raise ValueError(f'no pose has {min_limbs} or more measurable limbs')
    lengths, valid, scale = lengths[use], valid[use], scale[use]
    if bool((scale <= 0).any()):
        raise ValueError('a pose has a zero median limb length (collapsed keypoints)')
    for it in range(1, max_iters + 1):
        template, n = masked_median(lengths / scale[:, None], valid, dim=0)
        known = (n > 0) & (template > 0)
        if not bool(known.any()):
            raise ValueError('every limb has zero median length')
        template = torch.where(known, template, torch.full_like(template, float('nan')))
        template = template / torch.exp(torch.log(template[known]).mean())
        new_scale, _ = reference_scale(lengths, valid, template, 1)
        if bool((new_scale <= 0).any()):
            raise ValueError('a pose has a zero median limb/template ratio')
        change = float(((new_scale - scale).abs() / scale).max())
        scale = new_scale
        if change < tol:
            return template, it
    raise RuntimeError(f'length template did not converge in {max_iters} iterations '
                       f'(last relative change {change:.3g})')
