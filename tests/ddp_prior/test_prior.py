"""DDPPrior inference: save/load, missing joints, determinism, float32 islands, no gradients."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from nk_train.ddp_prior import DDPPrior

MODES = [dict(mode='x0', noise_level='auto'), dict(mode='x0', noise_level=0.3),
         dict(mode='sdedit', noise_level=0.3, num_steps=3, seed=7)]


def _hide_some(coords: torch.Tensor, vis: torch.Tensor) -> torch.Tensor:
    vis = vis.clone()
    vis[0, [9, 10]] = False   # wrists
    vis[1, 15] = False        # an ankle
    vis[2, :5] = False        # the whole face
    return vis


def test_save_load_gives_identical_outputs(tiny_checkpoint, prior, val_poses):
    ckpt, path = tiny_checkpoint
    raw = torch.load(path, map_location='cpu', weights_only=True)
    assert raw['format'] == ckpt['format'] and raw['training'] == ckpt['training']
    in_memory = DDPPrior.from_checkpoint_dict(ckpt)
    coords, vis = val_poses
    for kw in MODES:
        assert torch.equal(prior.denoise(coords, vis, **kw), in_memory.denoise(coords, vis, **kw))


def test_output_is_coordinates_in_float32(prior, val_poses):
    coords, vis = val_poses
    out = prior.denoise(coords.double(), vis)
    res = prior.residual(coords.double(), vis)
    assert out.shape == coords.shape and res.shape == coords.shape
    assert out.dtype == torch.float32 and res.dtype == torch.float32
    assert torch.allclose(res, out - coords, atol=1e-3)


def test_missing_joints(prior, val_poses):
    coords, vis = val_poses
    vis = _hide_some(coords, vis)
    for kw in MODES:
        outs = []
        for garbage in (float('nan'), 1e6, -45.0):
            bad = torch.where(vis[..., None], coords, torch.full_like(coords, garbage))
            out = prior.denoise(bad, vis, **kw)
            res = prior.residual(bad, vis, **kw)
            assert torch.isfinite(out[vis]).all() and torch.isfinite(res).all()
            assert torch.equal(res[~vis], torch.zeros_like(res[~vis]))
            outs.append(out[vis])
        assert all(torch.equal(o, outs[0]) for o in outs[1:]), kw
        # invisible joints are passed through, never invented
        bad = torch.where(vis[..., None], coords, torch.full_like(coords, -45.0))
        assert torch.equal(prior.denoise(bad, vis, **kw)[~vis], bad[~vis])


def test_pose_without_frame_is_left_unchanged(prior, val_poses):
    coords, vis = val_poses
    vis = vis.clone()
    vis[3] = False
    vis[3, :prior.normalization.min_visible - 1] = True
    res = prior.residual(coords, vis)
    assert torch.equal(res[3], torch.zeros_like(res[3]))
    assert res[4].abs().sum() > 0


def test_seeded_and_deterministic(prior, val_poses):
    coords, vis = val_poses
    kw = dict(mode='sdedit', noise_level=0.3, num_steps=3)
    a = prior.denoise(coords, vis, seed=3, **kw)
    assert torch.equal(a, prior.denoise(coords, vis, seed=3, **kw))
    gen = torch.Generator().manual_seed(3)
    assert torch.equal(a, prior.denoise(coords, vis, generator=gen, **kw))
    assert not torch.equal(a, prior.denoise(coords, vis, seed=4, **kw))
    assert torch.equal(prior.denoise(coords, vis), prior.denoise(coords, vis))


def test_float32_inside_bf16_autocast(prior, val_poses):
    coords, vis = val_poses
    for kw in MODES:
        ref = prior.denoise(coords, vis, **kw)
        with torch.autocast('cpu', dtype=torch.bfloat16):
            out = prior.denoise(coords, vis, **kw)
            res = prior.residual(coords, vis, **kw)
            low = prior.denoise(coords.bfloat16(), vis, **kw)
        assert out.dtype == res.dtype == low.dtype == torch.float32
        assert torch.isfinite(out).all() and torch.isfinite(low).all()
        assert torch.equal(out, ref)  # autocast really was off inside


class _Student(nn.Module):
    """A parent module holding the prior, as the SSL model will."""

    def __init__(self, prior: DDPPrior) -> None:
        super().__init__()
        self.head = nn.Linear(2, 2)
        self.prior = prior


def test_no_gradient_into_prior_and_stays_eval(prior, val_poses):
    coords, vis = val_poses
    parent = _Student(prior)
    parent.train()
    assert parent.head.training
    assert not any(m.training for m in prior.modules())
    assert not any(p.requires_grad for p in prior.parameters())

    y = parent.head(coords)  # predictions that carry a gradient
    y_hat = prior.denoise(y, vis)
    assert not y_hat.requires_grad
    loss_dev = (y - y_hat.detach()).pow(2).sum(-1)[vis].mean()  # L_dev form
    loss_dev.backward()
    assert parent.head.weight.grad is not None and parent.head.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in prior.parameters())


def test_bad_inputs_raise(prior, val_poses):
    coords, vis = val_poses
    with pytest.raises(ValueError, match='trained on 17 keypoints'):
        prior.denoise(coords[:, :16], vis[:, :16])
    with pytest.raises(ValueError, match='visibility must be'):
        prior.denoise(coords, vis[:, :5])
    with pytest.raises(ValueError, match='mode must be'):
        prior.denoise(coords, vis, mode='heatmap')
    with pytest.raises(ValueError, match="noise_level must be"):
        prior.denoise(coords, vis, noise_level='high')
