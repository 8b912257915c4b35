"""KPS terms: hand-computed mappings, edge cases (nothing visible, collapsed poses), dtypes."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from nk_train.coco_keypoints import read_coco_keypoints
from nk_train.kps import (KinematicPlausibilityScore, heatmap_peaks, score_conf, score_len,
                          score_rom)
from nk_train.skeleton import load_skeleton

STATS = str(Path(__file__).resolve().parents[2] / 'stats' / 'skeleton_stats.json')


@pytest.fixture(scope='module')
def val_poses(syrip_root):
    return read_coco_keypoints(syrip_root / 'annotations/val_test100.json',
                               load_skeleton().num_keypoints)


def test_score_len_hand_cases():
    mean = torch.tensor([1.0, 2.0, 0.5])
    std = torch.tensor([0.5, 1.0, float('nan')])  # third limb: no statistics
    norm = torch.tensor([[1.0 + 1.96 * 0.5, 2.0, 9.0], [1.0, 2.0, 0.5]])
    valid = torch.tensor([[True, True, True], [False, False, False]])
    pose, per_limb, z = score_len(norm, valid, mean, std, empty_score=0.25)
    assert z[0].tolist() == pytest.approx([1.96, 0.0, 0.0], abs=1e-5)
    # two-sided Gaussian tail: 0.05 at |z| = 1.96, 1 at the mean
    assert per_limb[0, :2].tolist() == pytest.approx([0.05, 1.0], abs=1e-4)
    # Sidak over the 2 measured limbs: 1 - (1 - 0.05)^2
    assert pose[0].item() == pytest.approx(1 - 0.95 ** 2, abs=2e-4)
    assert pose[1].item() == 0.25  # nothing measured
    assert torch.isfinite(per_limb).all() and torch.isfinite(z).all()


def test_score_rom_hand_cases():
    lo, hi = torch.tensor([30.0, 10.0]), torch.tensor([150.0, float('nan')])
    angles = torch.tensor([[90.0, 5.0], [160.0, 5.0], [10.0, 5.0]])
    valid = torch.ones(3, 2, dtype=torch.bool)
    pose, per_joint = score_rom(angles, valid, lo, hi, margin_deg=10.0)
    assert per_joint[:, 0].tolist() == pytest.approx([1.0, math.exp(-0.5), math.exp(-2.0)])
    assert (per_joint[:, 1] == 0).all()  # no interval: not measured
    assert pose.tolist() == pytest.approx(per_joint[:, 0].tolist())
    empty, _ = score_rom(angles, torch.zeros_like(valid), lo, hi, 10.0, empty_score=0.5)
    assert empty.tolist() == [0.5, 0.5, 0.5]


def test_score_conf_and_heatmap_peaks():
    scores = torch.tensor([[0.5, 1.5, -1.0, float('nan')]])
    pose, per_kpt = score_conf(scores)
    assert per_kpt.tolist() == [[0.5, 1.0, 0.0, 0.0]] and pose.item() == pytest.approx(0.375)
    heatmaps = torch.zeros(2, 4, 8, 6)
    heatmaps[1, 2, 3, 4] = 0.8
    assert heatmap_peaks(heatmaps)[1].tolist() == pytest.approx([0, 0, 0.8, 0])


def test_all_invisible_and_collapsed_poses_are_defined(val_poses):
    kps = KinematicPlausibilityScore(STATS, weights=dict(conf=1.0, len=2.0, rom=1.0))
    coords = torch.from_numpy(val_poses.coords[:4]).float()
    scores = torch.full((4, coords.shape[1]), 0.9)
    visible = torch.ones(4, coords.shape[1], dtype=torch.bool)
    visible[0] = False  # nothing visible
    coords[1] = coords[1, :1]  # every keypoint on one pixel
    coords[2, 3] = float('nan')  # a broken coordinate counts as invisible
    out = kps(coords, keypoint_scores=scores, visible=visible)
    for t in (out.kps, out.score_conf, out.score_len, out.score_rom, out.limb_scores,
              out.joint_scores, out.limb_z, out.joint_angles):
        assert torch.isfinite(t).all() and t.dtype == torch.float32
    for t in (out.kps, out.score_conf, out.score_len, out.score_rom):
        assert ((t >= 0) & (t <= 1)).all()
    assert out.score_len[0] == 0 and out.score_rom[0] == 0  # empty_score
    assert out.kps[0].item() == pytest.approx(0.9 / 4)  # only conf contributes
    assert out.score_len[1] < 1e-3 and out.score_rom[1] == 0  # collapsed: implausible
    assert not out.limb_valid[2][[e for e, (i, j) in enumerate(kps.edges.tolist())
                                  if 3 in (i, j)]].any()
    assert out.score_len[3] > 0.01 and out.score_rom[3] > 0.5  # an untouched real pose


def test_kps_is_weighted_mean_of_terms(val_poses):
    kps = KinematicPlausibilityScore(STATS, weights=dict(conf=1.0, len=2.0, rom=0.5))
    coords = torch.from_numpy(val_poses.coords[:8]).float()
    scores = torch.rand(8, coords.shape[1], generator=torch.Generator().manual_seed(0))
    out = kps(coords, keypoint_scores=scores)
    expected = (out.score_conf + 2.0 * out.score_len + 0.5 * out.score_rom) / 3.5
    torch.testing.assert_close(out.kps, expected)


def test_half_precision_input_under_autocast_gives_float32(val_poses):
    kps = KinematicPlausibilityScore(STATS, weights=dict(len=1.0, rom=1.0))
    coords = torch.from_numpy(val_poses.coords[:8]).float()
    ref = kps(coords).kps
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = kps(coords.to(torch.bfloat16))
    assert out.kps.dtype == torch.float32
    # bfloat16 coordinates are rounded (8 bits of mantissa); the scores stay close
    assert (out.kps - ref).abs().max() < 0.1


def test_gross_corruption_lowers_the_score(val_poses):
    """Uniform random poses in the GT box score below the real poses on average."""
    kps = KinematicPlausibilityScore(STATS, weights=dict(len=1.0, rom=1.0))
    real = torch.from_numpy(val_poses.coords).float()
    boxes = torch.from_numpy(val_poses.bboxes).float()
    gen = torch.Generator().manual_seed(0)
    rand = boxes[:, None, :2] + torch.rand(real.shape, generator=gen) * boxes[:, None, 2:]
    assert kps(rand).kps.mean() < kps(real).kps.mean() - 0.2


def test_config_errors_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match='unknown KPS weight'):
        KinematicPlausibilityScore(STATS, weights=dict(length=1.0))
    with pytest.raises(ValueError, match='not all 0'):
        KinematicPlausibilityScore(STATS, weights=dict(conf=0.0))
    with pytest.raises(KeyError, match='0.3'):
        KinematicPlausibilityScore(STATS, rom_quantiles=(0.3, 0.9))
    kps = KinematicPlausibilityScore(STATS)
    with pytest.raises(ValueError, match='no keypoint_scores'):
        kps(torch.zeros(1, 17, 2))
    with pytest.raises(ValueError, match='coords must be'):
        kps(torch.zeros(1, 16, 2), keypoint_scores=torch.zeros(1, 16))


def test_builds_from_the_mmpose_registry():
    from mmpose.registry import MODELS
    kps = MODELS.build(dict(type='KinematicPlausibilityScore', stats_file=STATS,
                            weights=dict(len=1.0)))
    assert isinstance(kps, KinematicPlausibilityScore)


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a CUDA device')
def test_cuda_matches_cpu(val_poses):
    kps = KinematicPlausibilityScore(STATS, weights=dict(conf=1.0, len=1.0, rom=1.0))
    coords = torch.from_numpy(val_poses.coords).float()
    scores = torch.rand(coords.shape[:2], generator=torch.Generator().manual_seed(0))
    ref = kps(coords, keypoint_scores=scores)
    gpu = kps.cuda()(coords.cuda(), keypoint_scores=scores.cuda())
    torch.testing.assert_close(gpu.kps.cpu(), ref.kps, atol=1e-4, rtol=1e-4)
