"""The Kinematic Plausibility Score (KPS) of 2D poses, e.g. the EMA teacher's pseudo-labels.

Up to four terms, each in [0, 1] (1 = plausible), combined by a weighted mean:

* ``score_conf``: the mean keypoint confidence (keypoint scores or heatmap peaks, clamped to
  [0, 1]);
* ``score_len``: limb lengths (normalised by the pose's own scale, see
  :mod:`nk_train.kps.geometry`) against the labeled mean/std: the Sidak-corrected two-sided
  Gaussian tail probability of the worst limb z-score;
* ``score_rom``: the soft fraction of joint angles inside their range of motion (a quantile
  interval of the labeled angles);
* ``score_prior`` (optional, needs a ddp_prior checkpoint): how far the diffusion prior moves
  the pose's worst joint, ``exp(-c^2 / (2 tau^2))`` with ``c`` the largest correction in
  pose-frame units (``DDPPrior.correction_size``). It sees the whole configuration, so it
  catches displaced and swapped joints that per-limb statistics let through
  (benchmarks/results/kps_auroc.json).

Per-limb and per-joint terms are returned too, so a keypoint-level gate can be built on the
same call. Everything runs in float32 with autocast off, on the input's device.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..ddp_prior.lazy import LazyPrior
from ..ddp_prior.prior import DDPPrior
from ..paths import require_project_file
from ..skeleton import load_skeleton
from .geometry import joint_angles_deg, limb_lengths, normalised_lengths, reference_scale
from .stats import load_skeleton_stats

TERMS = ('conf', 'len', 'rom', 'prior')


def heatmap_peaks(heatmaps: torch.Tensor) -> torch.Tensor:
    """Per-keypoint maximum of ``B x K x H x W`` heatmaps: ``B x K``."""
    if heatmaps.dim() != 4:
        raise ValueError(f'heatmaps must be B x K x H x W, got shape {tuple(heatmaps.shape)}')
    return heatmaps.float().flatten(2).amax(-1)


def score_conf(keypoint_scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(per-pose mean, per-keypoint)`` of confidences clamped to [0, 1]; ``B x K`` input.

    All K keypoints count (a keypoint the teacher is unsure of is exactly what this term
    penalises); non-finite scores count as 0.
    """
    s = torch.nan_to_num(keypoint_scores.float(), nan=0.0, posinf=1.0, neginf=0.0).clamp(0, 1)
    return s.mean(-1), s


def score_len(norm_len: torch.Tensor, valid: torch.Tensor, mean: torch.Tensor,
              std: torch.Tensor, empty_score: float = 0.0
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Limb-length plausibility: ``(per-pose (B,), per-limb (B x E), z (B x E))``.

    ``z_e = (l_e - mean_e) / std_e``; per limb ``p_e = erfc(|z_e| / sqrt 2)``, the probability
    that a Gaussian limb length lies at least this far from the mean (1 at the mean, 0.05 at
    |z| = 1.96). Per pose ``1 - (1 - min_e p_e) ** n`` over its n measured limbs (Sidak): the
    probability that a pose from the statistics has a limb at least as extreme as this pose's
    worst one, so real poses score roughly uniformly in [0, 1] and one broken limb is enough
    to score low. Limbs without statistics (NaN mean/std) are not measured. A pose with no
    measured limb gets ``empty_score``. Invalid entries of the per-limb outputs are 0.
    """
    known = torch.isfinite(mean) & torch.isfinite(std)
    ok = valid & known[None]
    z = (norm_len - torch.nan_to_num(mean)[None]) / torch.nan_to_num(std, nan=1.0).clamp(
        min=1e-6)[None]
    z = torch.where(ok, z, torch.zeros_like(z))
    p = torch.special.erfc(z.abs() / math.sqrt(2.0))
    p = torch.where(ok, p, torch.zeros_like(p))
    n = ok.sum(-1)
    p_min = torch.where(ok, p, torch.ones_like(p)).amin(-1)
    sidak = -torch.expm1(n.to(p.dtype) * torch.log1p(-p_min))
    pose = torch.where(n > 0, sidak, torch.full_like(sidak, empty_score))
    return pose, p, z


def score_rom(angles: torch.Tensor, valid: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor,
              margin_deg: float, empty_score: float = 0.0
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Range-of-motion plausibility: ``(per-pose (B,), per-joint (B x A))``.

    Per joint angle: 1 inside ``[lo, hi]`` (degrees), ``exp(-d^2 / (2 margin^2))`` at ``d``
    degrees outside it (0.61 at one margin, 0.14 at two). Per pose: the mean over the
    measured angles, i.e. a soft fraction of joints inside their ROM. Angles without an
    interval (NaN) are not measured; a pose with no measured angle gets ``empty_score``.
    """
    if margin_deg <= 0:
        raise ValueError(f'margin_deg must be > 0, got {margin_deg}')
    known = torch.isfinite(lo) & torch.isfinite(hi)
    ok = valid & known[None]
    d = (torch.nan_to_num(lo)[None] - angles).clamp(min=0) + (
        angles - torch.nan_to_num(hi)[None]).clamp(min=0)
    s = torch.exp(-0.5 * (d / margin_deg) ** 2)
    s = torch.where(ok, s, torch.zeros_like(s))
    n = ok.sum(-1)
    mean = s.sum(-1) / n.clamp(min=1).to(s.dtype)
    pose = torch.where(n > 0, mean, torch.full_like(mean, empty_score))
    return pose, s


def score_prior(correction: torch.Tensor, valid: torch.Tensor, tau: float,
                empty_score: float = 0.0) -> torch.Tensor:
    """Prior plausibility (B,): ``exp(-c^2 / (2 tau^2))`` of the largest correction ``c`` (1 =
    the prior leaves the pose alone; 0.61 at ``c = tau``, 0.14 at ``2 tau``); poses the prior
    has no opinion about get ``empty_score``."""
    if tau <= 0:
        raise ValueError(f'tau must be > 0, got {tau}')
    s = torch.exp(-0.5 * (correction / tau) ** 2)
    return torch.where(valid, s, torch.full_like(s, empty_score))


@dataclass
class KPSResult:
    """Per-pose scores (B,) and the per-limb / per-joint terms behind them."""

    kps: torch.Tensor
    score_conf: torch.Tensor | None  # None when no keypoint scores were given
    score_len: torch.Tensor
    score_rom: torch.Tensor
    score_prior: torch.Tensor | None  # None when the prior term is off
    keypoint_conf: torch.Tensor | None  # B x K
    scale: torch.Tensor  # B, coordinate units per normalised unit
    scale_valid: torch.Tensor  # B
    limb_len: torch.Tensor  # B x E, normalised
    limb_z: torch.Tensor  # B x E
    limb_scores: torch.Tensor  # B x E
    limb_valid: torch.Tensor  # B x E
    joint_angles: torch.Tensor  # B x A, degrees
    joint_scores: torch.Tensor  # B x A
    joint_valid: torch.Tensor  # B x A


class KinematicPlausibilityScore(nn.Module):
    """KPS built from a config dict, e.g.::

        dict(type='KinematicPlausibilityScore', stats_file='stats/skeleton_stats.json',
             weights=dict(conf=1.0, len=1.0, rom=1.0))

    Args:
        stats_file: statistics written by ``tools/compute_kps_stats.py``; it must match the
            skeleton of ``dataset_info`` (default: the infant COCO-17 file).
        weights: non-negative weight per term (``conf``, ``len``, ``rom``, ``prior``;
            missing = 0). ``kps = sum_t w_t * score_t / sum_t w_t``.
        prior: ``dict(checkpoint=PATH, tau=0.15)`` of the ``prior`` term (needed when its
            weight is > 0): a ``tools/train_ddp_prior.py`` checkpoint and the correction (in
            pose-frame units) at which the score is 0.61. Default tau: about the median
            largest correction of real val_test100 poses (``real_prior_correction`` in
            benchmarks/results/kps_auroc.json).
        rom_quantiles: the stored quantile levels that bound each joint's ROM interval.
        rom_margin_deg: soft margin of ``score_rom`` (degrees).
        score_thr: if set, keypoints whose score is below it are treated as not visible for
            the length and angle terms (they still lower ``score_conf``).
        empty_score: score of a term that has nothing to measure (no visible limb/angle);
            0 by default, so a pose without evidence is not trusted.
    """

    def __init__(self, stats_file: str | Path, weights: dict | None = None,
                 rom_quantiles: tuple[float, float] = (0.025, 0.975),
                 rom_margin_deg: float = 10.0, score_thr: float | None = None,
                 empty_score: float = 0.0, dataset_info: str | Path | None = None,
                 prior: dict | None = None) -> None:
        super().__init__()
        weights = dict(conf=1.0, len=1.0, rom=1.0) if weights is None else dict(weights)
        unknown = set(weights) - set(TERMS)
        if unknown:
            raise ValueError(f'unknown KPS weight(s) {sorted(unknown)}; terms are {TERMS}')
        self.weights = {t: float(weights.get(t, 0.0)) for t in TERMS}
        if any(w < 0 or not math.isfinite(w) for w in self.weights.values()) or \
                sum(self.weights.values()) <= 0:
            raise ValueError(f'KPS weights must be finite, >= 0 and not all 0: {weights}')
        if not 0.0 <= empty_score <= 1.0:
            raise ValueError(f'empty_score must lie in [0, 1], got {empty_score}')
        if rom_margin_deg <= 0:
            raise ValueError(f'rom_margin_deg must be > 0, got {rom_margin_deg}')
        self.rom_quantiles = (float(rom_quantiles[0]), float(rom_quantiles[1]))
        self.rom_margin_deg = float(rom_margin_deg)
        self.score_thr = score_thr
        self.empty_score = float(empty_score)

        stats_file = require_project_file(stats_file, 'KPS stats_file',
                                          'Write it with tools/compute_kps_stats.py.')
        stats = load_skeleton_stats(stats_file, load_skeleton(dataset_info))
        self.stats_file = str(stats_file)
        self.min_limbs = stats.min_limbs
        self.keypoint_names = tuple(stats.keypoint_names)
        self.num_keypoints = len(stats.keypoint_names)
        lo, hi = stats.rom_interval(*self.rom_quantiles)
        # Not persistent: they come from stats_file, not from checkpoints.
        for name, value in dict(edges=torch.tensor(stats.edges, dtype=torch.long),
                                triples=torch.tensor(stats.joint_angles, dtype=torch.long),
                                template=stats.template.float(),
                                len_mean=stats.len_mean.float(),
                                len_std=stats.len_std.float(),
                                rom_lo=lo.float(), rom_hi=hi.float()).items():
            self.register_buffer(name, value, persistent=False)
        self._build_prior(prior)

    def _build_prior(self, prior: dict | None) -> None:
        """The frozen ddp_prior of the ``prior`` term: a ``LazyPrior``, outside this module's
        state dict (and so out of Stage1 checkpoints), read on first use (``prior``) so a
        Stage1 model can be evaluated without it. A Stage1 model hands its own instance over
        (``share_prior``)."""
        self.prior_tau = None
        self.lazy_prior: LazyPrior | None = None
        if self.weights['prior'] <= 0:
            return
        if not prior or 'checkpoint' not in prior:
            raise ValueError("the KPS prior weight is > 0: give prior=dict(checkpoint=PATH)")
        unknown = set(prior) - {'checkpoint', 'tau'}
        if unknown:
            raise ValueError(f'KPS prior: unknown keys {sorted(unknown)}; known: checkpoint, tau')
        self.lazy_prior = LazyPrior(prior['checkpoint'], self.keypoint_names, 'KPS prior')
        self.prior_tau = float(prior.get('tau', 0.15))
        if self.prior_tau <= 0:
            raise ValueError(f'KPS prior tau must be > 0, got {self.prior_tau}')

    def share_prior(self, prior: LazyPrior) -> None:
        """Score with an owner's ``prior`` when it reads the file this KPS names, so the owner
        holds (and reads) one instance; without the prior term, or naming another file, the
        KPS keeps its own."""
        if self.lazy_prior is None or self.lazy_prior.path != prior.path:
            return
        if prior.keypoint_names != self.keypoint_names:
            raise ValueError(f'KPS prior: the shared prior is for the keypoints '
                             f'{list(prior.keypoint_names)}, the KPS statistics have '
                             f'{list(self.keypoint_names)}')
        self.lazy_prior = prior

    @property
    def prior(self) -> DDPPrior | None:
        """The loaded ``DDPPrior`` of the ``prior`` term, or None when the term is off."""
        return None if self.lazy_prior is None else self.lazy_prior.get()

    def forward(self, coords: torch.Tensor, keypoint_scores: torch.Tensor | None = None,
                visible: torch.Tensor | None = None) -> KPSResult:
        """Score ``B x K x 2`` coordinates (any consistent unit, e.g. pixels).

        ``keypoint_scores``: ``B x K`` confidences (needed when the ``conf`` weight is > 0).
        ``visible``: ``B x K``, > 0 = keypoint present (e.g. COCO v); default all present.
        Non-finite coordinates count as not visible.
        """
        self._check_inputs(coords, keypoint_scores, visible)
        with torch.autocast(device_type=coords.device.type, enabled=False):
            xy, vis = self._visible_coords(coords, keypoint_scores, visible)
            lengths, limb_ok = limb_lengths(xy, vis, self.edges)
            scale, scale_ok = reference_scale(lengths, limb_ok, self.template, self.min_limbs)
            norm, norm_ok = normalised_lengths(lengths, limb_ok, scale, scale_ok)
            s_len, limb_scores, z = score_len(norm, norm_ok, self.len_mean, self.len_std,
                                              self.empty_score)
            angles, angle_ok = joint_angles_deg(xy, vis, self.triples)
            s_rom, joint_scores = score_rom(angles, angle_ok, self.rom_lo, self.rom_hi,
                                            self.rom_margin_deg, self.empty_score)
            s_conf = kp_conf = None
            if keypoint_scores is not None:
                s_conf, kp_conf = score_conf(keypoint_scores)
            s_prior = None
            if self.lazy_prior is not None:
                prior = self.lazy_prior.get(xy.device)
                correction, prior_ok = prior.correction_size(xy, vis)
                s_prior = score_prior(correction, prior_ok, self.prior_tau, self.empty_score)
            kps = self._weighted_mean(dict(conf=s_conf, len=s_len, rom=s_rom, prior=s_prior))
        return KPSResult(kps=kps, score_conf=s_conf, score_len=s_len, score_rom=s_rom,
                         score_prior=s_prior,
                         keypoint_conf=kp_conf, scale=scale, scale_valid=scale_ok,
                         limb_len=norm, limb_z=z, limb_scores=limb_scores,
                         limb_valid=norm_ok & (torch.isfinite(self.len_mean)
                                               & torch.isfinite(self.len_std))[None],
                         joint_angles=angles, joint_scores=joint_scores,
                         joint_valid=angle_ok & (torch.isfinite(self.rom_lo)
                                                 & torch.isfinite(self.rom_hi))[None])

    def _check_inputs(self, coords: torch.Tensor, keypoint_scores: torch.Tensor | None,
                      visible: torch.Tensor | None) -> None:
        if coords.dim() != 3 or coords.shape[1:] != (self.num_keypoints, 2):
            raise ValueError(f'coords must be B x {self.num_keypoints} x 2, '
                             f'got {tuple(coords.shape)}')
        b, k = coords.shape[:2]
        for name, t in (('keypoint_scores', keypoint_scores), ('visible', visible)):
            if t is not None and tuple(t.shape) != (b, k):
                raise ValueError(f'{name} must be {b} x {k}, got {tuple(t.shape)}')
        if keypoint_scores is None and self.weights['conf'] > 0:
            raise ValueError('the conf weight is > 0 but no keypoint_scores were given')

    def _visible_coords(self, coords: torch.Tensor, keypoint_scores: torch.Tensor | None,
                        visible: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """float32 coordinates (0 where not visible) and the B x K visibility the geometric
        terms use: finite, marked visible, and scored >= ``score_thr`` when it is set."""
        xy = coords.float()
        vis = torch.isfinite(xy).all(-1)
        if visible is not None:
            vis = vis & (visible > 0)
        if keypoint_scores is not None and self.score_thr is not None:
            vis = vis & (keypoint_scores.float() >= self.score_thr)
        return torch.where(vis[..., None], xy, torch.zeros_like(xy)), vis

    def _weighted_mean(self, scores: dict[str, torch.Tensor | None]) -> torch.Tensor:
        """``sum_t w_t * score_t / sum_t w_t`` over the terms of positive weight (B,)."""
        total = torch.zeros_like(scores['len'])
        for term, score in scores.items():
            if self.weights[term] > 0:
                total = total + self.weights[term] * score
        return total / sum(self.weights.values())
