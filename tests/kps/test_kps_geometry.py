"""Hand-computed geometry: angles, limb lengths, the scale normalisation, masked medians."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nk_train.kps import (joint_angles_deg, limb_lengths, masked_median, normalised_lengths,
                          reference_scale)
from nk_train.skeleton import load_skeleton


@pytest.fixture(scope='module')
def skeleton():
    return load_skeleton()


def _pose(skeleton, points: dict[int, tuple[float, float]]):
    """One pose with only ``points`` visible (others at NaN, which must not leak)."""
    coords = torch.full((1, skeleton.num_keypoints, 2), float('nan'), dtype=torch.float64)
    visible = torch.zeros(1, skeleton.num_keypoints, dtype=torch.bool)
    for k, xy in points.items():
        coords[0, k] = torch.tensor(xy, dtype=torch.float64)
        visible[0, k] = True
    return torch.nan_to_num(coords), visible


@pytest.mark.parametrize('b_xy, expected', [((0.0, 3.0), 90.0), ((-2.0, 0.0), 180.0),
                                             ((1.0, 1.0), 45.0), ((1.0, -1.0), 45.0)])
def test_joint_angle_hand_cases(skeleton, b_xy, expected):
    triples = skeleton.joint_angles()
    a, c, b = triples[5]
    coords, visible = _pose(skeleton, {a: (2.0, 0.0), c: (0.0, 0.0), b: b_xy})
    angles, valid = joint_angles_deg(coords, visible, torch.tensor(triples))
    assert valid[0].tolist() == [t == 5 for t in range(len(triples))]
    assert angles[0, 5].item() == pytest.approx(expected, abs=1e-9)
    assert torch.isfinite(angles).all()


def test_degenerate_angle_is_excluded(skeleton):
    triples = skeleton.joint_angles()
    a, c, b = triples[0]
    coords, visible = _pose(skeleton, {a: (5.0, 5.0), c: (5.0, 5.0), b: (9.0, 1.0)})
    angles, valid = joint_angles_deg(coords, visible, torch.tensor(triples))
    # (a, c, b) has a zero-length arm; a triple centred on b sees two non-zero arms
    assert not valid[0, 0] and angles[0, 0] == 0 and torch.isfinite(angles).all()
    other = [t for t, (x, y, z) in enumerate(triples) if y == b and {x, z} == {a, c}]
    assert other and valid[0, other].all() and angles[0, other].abs().max() < 1e-9


def test_limb_length_and_missing_joint(skeleton):
    edges = torch.tensor(skeleton.edges)
    i, j = skeleton.edges[0]
    other = next(k for k in range(skeleton.num_keypoints) if k not in (i, j))
    coords, visible = _pose(skeleton, {i: (1.0, 1.0), j: (4.0, 5.0)})  # a 3-4-5 triangle
    coords[0, other] = torch.tensor([1e9, -1e9], dtype=torch.float64)  # invisible: ignored
    lengths, valid = limb_lengths(coords, visible, edges)
    assert lengths[0, 0].item() == pytest.approx(5.0)
    assert valid[0].tolist() == [e == 0 for e in range(len(skeleton.edges))]
    assert (lengths[0, 1:] == 0).all()


def test_reference_scale_and_normalised_length_by_hand():
    lengths = torch.tensor([[2.0, 4.0, 6.0, 100.0, 7.0]], dtype=torch.float64)
    valid = torch.tensor([[True, True, True, True, False]])
    template = torch.tensor([1.0, 2.0, 3.0, 1.0, 1.0], dtype=torch.float64)
    # ratios 2, 2, 2, 100 (the fifth limb is missing): median 2, the outlier does not move it
    scale, ok = reference_scale(lengths, valid, template, min_limbs=3)
    assert ok.item() and scale.item() == pytest.approx(2.0)
    norm, norm_ok = normalised_lengths(lengths, valid, scale, ok)
    assert norm[0, :4].tolist() == pytest.approx([1.0, 2.0, 3.0, 50.0])
    assert norm_ok[0].tolist() == [True, True, True, True, False] and norm[0, 4] == 0
    # too few limbs for a scale: not valid, and nothing is normalised
    scale, ok = reference_scale(lengths, valid, template, min_limbs=5)
    assert not ok.item() and scale.item() == 1.0
    assert not normalised_lengths(lengths, valid, scale, ok)[1].any()


def test_scale_is_invariant_to_similarity_transforms(skeleton, syrip_root, repo_root):
    from nk_train.coco_keypoints import read_coco_keypoints
    from nk_train.kps import load_skeleton_stats
    stats = load_skeleton_stats(repo_root / 'stats/skeleton_stats.json', skeleton)
    poses = read_coco_keypoints(syrip_root / 'annotations/val_test100.json',
                                skeleton.num_keypoints)
    coords = torch.from_numpy(poses.coords[:20])
    visible = torch.from_numpy(poses.visibility[:20] > 0)
    edges = torch.tensor(skeleton.edges)
    theta = 0.7
    rot = torch.tensor([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]],
                       dtype=torch.float64)
    moved = 2.5 * coords @ rot.T + torch.tensor([30.0, -400.0], dtype=torch.float64)
    out = []
    for xy in (coords, moved):
        lengths, valid = limb_lengths(xy, visible, edges)
        scale, ok = reference_scale(lengths, valid, stats.template, stats.min_limbs)
        out.append(normalised_lengths(lengths, valid, scale, ok)[0])
    torch.testing.assert_close(out[0], out[1])


def test_masked_median_matches_numpy():
    gen = torch.Generator().manual_seed(0)
    values = torch.rand(50, 9, generator=gen, dtype=torch.float64)
    mask = torch.rand(50, 9, generator=gen) > 0.4
    med, count = masked_median(values, mask, dim=-1)
    for n in range(50):
        sel = values[n][mask[n]].numpy()
        assert count[n].item() == len(sel)
        assert med[n].item() == pytest.approx(np.median(sel) if len(sel) else 0.0)
