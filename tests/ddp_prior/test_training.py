"""Loading labeled poses, flip augmentation, the masked loss, and a short training run."""
from __future__ import annotations

import json

import pytest
import torch

from nk_train.ddp_prior import (DDPPrior, NoiseSchedule, build_networks, load_training_poses,
                                train_prior)
from nk_train.ddp_prior.training import augment, diffusion_loss, make_noisy_batch


def test_load_real_labeled_poses(train_ann, train_poses, skeleton):
    anns = json.loads(train_ann.read_text())['annotations']
    assert train_poses.coords.shape == (len(anns), skeleton.num_keypoints, 2)
    expected = sum(1 for a in anns for v in a['keypoints'][2::3] if v > 0)
    assert int(train_poses.visible.sum()) == expected
    assert train_poses.annotation_ids == [a['id'] for a in anns]


def test_unlabeled_and_diagnostic_files_refused(syrip_root, skeleton):
    with pytest.raises(ValueError, match='no annotation has'):
        load_training_poses(syrip_root / 'annotations' / 'train_unlabeled.json',
                            skeleton.num_keypoints)
    with pytest.raises(ValueError, match='never a training input'):
        load_training_poses(syrip_root / 'annotations' /
                            'train_unlabeled_diagnostic_keypoints.json', skeleton.num_keypoints)


def test_flip_swaps_left_and_right(train_poses, skeleton, make_config):
    names = skeleton.keypoint_names
    coords, vis = train_poses.coords[:4], train_poses.visible[:4]
    cfg = make_config().augment
    cfg.flip_prob, cfg.rot_deg, cfg.stretch, cfg.drop_prob = 1.0, 0.0, 0.0, 0.0
    out, out_vis = augment(coords, vis, torch.tensor(skeleton.flip_indices), cfg,
                           torch.Generator().manual_seed(0), 3)
    for k, name in enumerate(names):
        mirror = name.replace('left_', 'RIGHT_').replace('right_', 'left_').replace(
            'RIGHT_', 'right_')
        j = names.index(mirror)
        assert torch.allclose(out[:, k, 0], -coords[:, j, 0])
        assert torch.allclose(out[:, k, 1], coords[:, j, 1])
        assert torch.equal(out_vis[:, k], vis[:, j])


def _noisy_batch(train_poses, schedule, normalization, seed=0):
    partial = (~train_poses.visible).any(1).nonzero().flatten()
    idx = torch.cat([partial, torch.arange(29)])
    return make_noisy_batch(train_poses.coords[idx], train_poses.visible[idx], schedule,
                            normalization, torch.Generator().manual_seed(seed))


def test_invisible_joints_do_not_affect_loss(train_poses, make_config):
    cfg = make_config()
    schedule = NoiseSchedule(cfg.schedule)
    torch.manual_seed(0)
    denoiser = build_networks(cfg.denoiser)['denoiser']
    batch = _noisy_batch(train_poses, schedule, cfg.normalization)
    assert (~batch.visible).any()
    grads = []
    for garbage in (0.0, float('nan'), 1e6):
        batch.y = torch.where(batch.visible[..., None], batch.y, torch.full_like(batch.y, garbage))
        batch.x0 = torch.where(batch.visible[..., None], batch.x0,
                               torch.full_like(batch.x0, -garbage))
        denoiser.zero_grad()
        loss = diffusion_loss(denoiser, schedule, batch)
        loss.backward()
        grads.append((loss.detach(), [p.grad.clone() for p in denoiser.parameters()]))
    for loss, g in grads[1:]:
        assert torch.isfinite(loss)
        assert torch.equal(loss, grads[0][0])
        assert all(torch.equal(a, b) for a, b in zip(g, grads[0][1]))


def test_few_steps_lower_the_loss(train_poses, skeleton, make_config):
    cfg = make_config(steps=40)
    schedule = NoiseSchedule(cfg.schedule)
    batches = [_noisy_batch(train_poses, schedule, cfg.normalization, seed=s) for s in range(4)]
    torch.manual_seed(cfg.seed)  # train_prior initialises from the same seed
    initial = build_networks(cfg.denoiser)
    trained, losses = train_prior(train_poses, skeleton.flip_indices, cfg)
    assert len(losses) == cfg.steps and all(torch.isfinite(torch.tensor(losses)))
    with torch.no_grad():
        before = sum(float(diffusion_loss(initial['denoiser'], schedule, b)) for b in batches)
        after = sum(float(diffusion_loss(trained['denoiser'], schedule, b)) for b in batches)
    assert after < 0.8 * before, (before, after)


def test_training_is_seeded(train_poses, skeleton, make_config):
    runs = [train_prior(train_poses, skeleton.flip_indices, make_config(steps=5, seed=s))
            for s in (1, 1, 2)]
    (a, la), (b, lb), (c, _) = runs
    assert la == lb
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(),
                                                 b.state_dict().values()))
    assert not all(torch.equal(x, y) for x, y in zip(a.state_dict().values(),
                                                     c.state_dict().values()))


def test_corrupted_checkpoint_is_refused_naming_the_file(tiny_checkpoint, tmp_path):
    """A flipped byte inside the weights of a saved prior (the pickle still loads) is refused by
    the weights' recorded sha256; an unreadable file names the file, not torch's advice."""
    _, path = tiny_checkpoint
    raw = bytearray(path.read_bytes())
    ckpt = torch.load(path, map_location='cpu', weights_only=True)
    name, weight = next((k, v) for k, v in ckpt['state_dict'].items() if v.numel() > 64)
    needle = weight.flatten()[17:25].numpy().tobytes()
    at = bytes(raw).find(needle)
    assert at > 0, 'weight bytes not found in the file'
    raw[at + 3] ^= 0x10
    flipped = tmp_path / 'flipped.pth'
    flipped.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r'flipped\.pth: the weights do not match the sha256'):
        DDPPrior.from_checkpoint(flipped)
    truncated = tmp_path / 'truncated.pth'
    truncated.write_bytes(bytes(raw[:len(raw) // 2]))
    with pytest.raises(ValueError, match=r'truncated\.pth: cannot read this ddp_prior'):
        DDPPrior.from_checkpoint(truncated)
