"""The per-pose frame: centre and scale from visible joints only, checked against numpy."""
from __future__ import annotations

import numpy as np
import torch

from nk_train.ddp_prior import NormalizationConfig, pose_frame, to_normalized, to_pixels

CFG = NormalizationConfig()


def _partially_visible(train_poses, n: int = 8):
    """Real poses that have unlabeled joints, plus fully labeled ones."""
    partial = (~train_poses.visible).any(1).nonzero().flatten()
    idx = torch.cat([partial, torch.arange(n)])
    return train_poses.coords[idx].clone(), train_poses.visible[idx].clone()


def test_frame_matches_numpy(train_poses):
    coords, vis = _partially_visible(train_poses)
    assert (~vis).any(), 'the fixture should contain unlabeled joints'
    frame = pose_frame(coords, vis, CFG)
    for i in range(coords.shape[0]):
        p = coords[i].numpy().astype(np.float64)[vis[i].numpy()]
        c = p.mean(0)
        s = np.sqrt(((p - c) ** 2).mean())
        np.testing.assert_allclose(frame.center[i].numpy(), c, rtol=1e-5)
        np.testing.assert_allclose(frame.scale[i].item(), s, rtol=1e-5)
    assert bool(frame.valid.all())


def test_invisible_values_change_nothing(train_poses):
    coords, vis = _partially_visible(train_poses)
    ref = to_normalized(coords, vis, pose_frame(coords, vis, CFG))
    for garbage in (float('nan'), 1e9, -45.0):
        bad = torch.where(vis[..., None], coords, torch.full_like(coords, garbage))
        frame = pose_frame(bad, vis, CFG)
        out = to_normalized(bad, vis, frame)
        assert torch.equal(out, ref)
        assert torch.equal(out[~vis], torch.zeros_like(out[~vis]))


def test_round_trip_and_unit_rms(train_poses):
    coords, vis = _partially_visible(train_poses)
    frame = pose_frame(coords, vis, CFG)
    x = to_normalized(coords, vis, frame)
    back = to_pixels(x, frame)
    assert torch.allclose(back[vis], coords[vis], rtol=1e-5, atol=1e-3)
    rms = (x.pow(2).sum((1, 2)) / (2 * vis.sum(1))).sqrt()
    assert torch.allclose(rms, torch.ones_like(rms), atol=1e-5)


def test_too_few_visible_joints_have_no_frame(train_poses):
    coords = train_poses.coords[:3].clone()
    vis = torch.zeros(coords.shape[:2], dtype=torch.bool)
    vis[0, :CFG.min_visible - 1] = True      # too few
    vis[1, :CFG.min_visible] = True          # enough
    coords[2] = coords[2, :1]                # all joints on one point: no scale
    vis[2] = True
    assert pose_frame(coords, vis, CFG).valid.tolist() == [False, True, False]
