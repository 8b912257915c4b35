"""L_cons: masking, normalisation and both modes against independent computations."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from nk_train.models.consistency_loss import HeatmapConsistencyLoss, gaussian_at_peak


def _heatmaps(seed: int, shape=(3, 5, 8, 6)) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed))


def test_mse_keeps_confident_keypoints_and_divides_by_all():
    s = _heatmaps(0)
    t = _heatmaps(1) * torch.linspace(0.2, 1.0, 5).view(1, 5, 1, 1)  # peaks spread over keypoints
    out = HeatmapConsistencyLoss(mode='mse', conf_thr=0.5)(s, t)
    sn, tn = s.numpy().astype(np.float64), t.numpy().astype(np.float64)
    peak = tn.reshape(3, 5, -1).max(-1)
    keep = peak >= 0.5
    assert 0 < keep.sum() < keep.size  # the threshold really splits this batch
    per_kpt = ((sn - tn) ** 2).reshape(3, 5, -1).mean(-1)
    assert np.array_equal(out.keep.numpy(), keep)
    assert np.allclose(out.confidence.numpy(), peak)
    assert out.loss.item() == pytest.approx((per_kpt * keep).sum() / keep.size, rel=1e-6)


def test_kl_matches_a_direct_computation():
    s, t = _heatmaps(2), _heatmaps(3)
    temp = 0.2
    out = HeatmapConsistencyLoss(mode='kl', conf_thr=0.0, kl_temperature=temp)(s, t)
    sn = s.numpy().astype(np.float64).reshape(3, 5, -1) / temp
    tn = t.numpy().astype(np.float64).reshape(3, 5, -1) / temp
    p = np.exp(tn - tn.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    log_q = sn - sn.max(-1, keepdims=True)
    log_q -= np.log(np.exp(log_q).sum(-1, keepdims=True))
    kl = (p * (np.log(p) - log_q)).sum(-1) * temp ** 2
    assert out.keep.all()
    assert out.loss.item() == pytest.approx(kl.mean(), rel=1e-5)


def test_hard_target_equals_the_codec_encoding_of_the_teacher_peak():
    """A hard pseudo-label is what UDPHeatmap encodes for a keypoint at the teacher's peak."""
    from mmpose.codecs import UDPHeatmap

    sigma, (w, h) = 2.0, (48, 64)
    codec = UDPHeatmap(input_size=(192, 256), heatmap_size=(w, h), sigma=sigma)
    teacher = _heatmaps(4, (1, 2, h, w))
    flat = teacher.flatten(2).argmax(-1)[0].numpy()
    peaks = np.stack([flat % w, flat // w], -1).astype(np.float32)  # heatmap px (x, y)
    keypoints = peaks * (np.array([191, 255]) / np.array([w - 1, h - 1]))  # to input px
    encoded = codec.encode(keypoints[None].astype(np.float32), np.ones((1, 2)))['heatmaps']
    ours = gaussian_at_peak(teacher, sigma)[0].numpy()
    assert np.allclose(ours, encoded, atol=1e-5)


def test_gradient_reaches_the_student_only_through_kept_keypoints():
    s = _heatmaps(5).requires_grad_(True)
    t = (_heatmaps(6) * torch.linspace(0.2, 1.0, 5).view(1, 5, 1, 1)).requires_grad_(True)
    out = HeatmapConsistencyLoss(conf_thr=0.5)(s, t)
    assert 0 < out.keep.sum() < out.keep.numel()
    out.loss.backward()
    assert t.grad is None  # the teacher is a target, never optimised
    grad_per_kpt = s.grad.abs().flatten(2).sum(-1)
    assert torch.equal(grad_per_kpt > 0, out.keep)


def test_nothing_confident_gives_zero_loss():
    out = HeatmapConsistencyLoss(conf_thr=2.0)(_heatmaps(7), _heatmaps(8))
    assert out.loss.item() == 0.0 and not out.keep.any()


@pytest.mark.parametrize('kwargs', [dict(mode='l1'), dict(target='x'), dict(sigma=0)])
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        HeatmapConsistencyLoss(**kwargs)


def test_mismatched_shapes_are_refused():
    with pytest.raises(ValueError, match='one shape'):
        HeatmapConsistencyLoss()(_heatmaps(0), _heatmaps(1, (3, 5, 8, 7)))
