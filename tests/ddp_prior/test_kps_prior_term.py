"""The KPS ``prior`` term: ``DDPPrior.correction_size`` in pose-frame units (hand-computed from
``residual`` and the pose frame, invariant to the pose's position and size), its score mapping,
poses the prior has no opinion about, the prior staying out of state dicts, and a KPS taking
an owner's instance of its prior (never another file's)."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from nk_train.ddp_prior import LazyPrior, pose_frame
from nk_train.kps import KinematicPlausibilityScore

STATS = str(Path(__file__).resolve().parents[2] / 'stats' / 'skeleton_stats.json')


def test_correction_size_by_hand(prior, val_poses):
    coords, visible = val_poses
    size, valid = prior.correction_size(coords, visible)
    assert valid.all()
    res = prior.residual(coords, visible)
    frame = pose_frame(coords, visible, prior.normalization)
    expect = (res.norm(dim=-1) * visible).amax(-1) / frame.scale
    torch.testing.assert_close(size, expect, rtol=1e-5, atol=1e-6)
    # pose-frame units: moving and scaling the pose does not change it
    moved, _ = prior.correction_size(coords * 2.5 + torch.tensor([300.0, -40.0]), visible)
    torch.testing.assert_close(moved, size, rtol=1e-3, atol=1e-4)


def test_a_gross_displacement_is_corrected_more(prior, val_poses):
    coords, visible = val_poses
    frame = pose_frame(coords, visible, prior.normalization)
    bad = coords.clone()
    joint = visible.float().argmax(-1)  # first labeled joint of each pose
    rows = torch.arange(len(bad))
    bad[rows, joint] += 2.0 * frame.scale[:, None]  # two pose spreads away, down-right
    clean_size, _ = prior.correction_size(coords, visible)
    bad_size, _ = prior.correction_size(bad, visible)
    assert bad_size.mean() > clean_size.mean()


def test_kps_prior_term(tiny_checkpoint, val_poses):
    coords, visible = val_poses
    tau = 0.2
    kps = KinematicPlausibilityScore(STATS, weights=dict(prior=1.0),
                                     prior=dict(checkpoint=str(tiny_checkpoint[1]), tau=tau))
    out = kps(coords, visible=visible)
    size, _ = kps.prior.correction_size(coords, visible)
    torch.testing.assert_close(out.score_prior, torch.exp(-0.5 * (size / tau) ** 2))
    torch.testing.assert_close(out.kps, out.score_prior)
    # nothing visible: the prior has no opinion -> empty_score, never NaN
    empty = kps(coords[:2], visible=torch.zeros_like(visible[:2]))
    assert empty.score_prior.tolist() == [0.0, 0.0]
    assert all(math.isfinite(x) for x in empty.kps.tolist())
    assert not kps.state_dict() and 'prior' not in dict(kps.named_modules())


def test_kps_prior_term_needs_a_checkpoint(tiny_checkpoint):
    with pytest.raises(ValueError, match='prior=dict\\(checkpoint=PATH\\)'):
        KinematicPlausibilityScore(STATS, weights=dict(len=1.0, prior=1.0))
    with pytest.raises(ValueError, match='unknown keys'):
        KinematicPlausibilityScore(STATS, weights=dict(prior=1.0),
                                   prior=dict(checkpoint=str(tiny_checkpoint[1]), tua=0.1))
    off = KinematicPlausibilityScore(STATS, weights=dict(len=1.0))
    assert off.prior is None


def test_kps_takes_a_shared_prior_of_its_own_file_only(tiny_checkpoint):
    path = tiny_checkpoint[1]
    kps = KinematicPlausibilityScore(STATS, weights=dict(prior=1.0),
                                     prior=dict(checkpoint=str(path)))
    names = kps.keypoint_names
    other = LazyPrior(path.parent / 'another_prior.pth', names, 'model.ddp_prior')
    kps.share_prior(other)
    assert kps.lazy_prior is not other
    shared = LazyPrior(path, names, 'model.ddp_prior')
    kps.share_prior(shared)
    assert kps.lazy_prior is shared and kps.prior is shared.get()
    with pytest.raises(ValueError, match='shared prior is for the keypoints'):
        kps.share_prior(LazyPrior(path, names[::-1], 'model.ddp_prior'))
