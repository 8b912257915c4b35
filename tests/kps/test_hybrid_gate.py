"""HybridGate applies the conf + KPS rule on real poses."""
from __future__ import annotations

import json

import pytest
import torch

from nk_train.kps.hybrid_gate import HybridGate


@pytest.fixture(scope='module')
def gate(repo_root):
    kps = dict(type='KinematicPlausibilityScore',
               stats_file=str(repo_root / 'stats/skeleton_stats.json'),
               weights=dict(conf=0.0, len=1.0, rom=0.0))
    return HybridGate(kps=kps, thr_conf=0.5, thr_kps=0.2)


def _val_poses(syrip_root, n):
    coco = json.loads((syrip_root / 'annotations/val_test100.json').read_text())
    kpts = torch.tensor([a['keypoints'] for a in coco['annotations'][:n]], dtype=torch.float32)
    return kpts.view(n, -1, 3)[..., :2]


def test_gate_splits_by_confidence_and_plausibility(gate, syrip_root):
    real = _val_poses(syrip_root, 4)
    kps_real = gate.kps(real).kps
    keep = kps_real >= gate.thr_kps
    assert keep.any(), kps_real
    i = int(keep.nonzero()[0])
    # Sample 0: plausible pose, confident teacher -> A.
    # Sample 1: same pose, unsure teacher (peaks 0.3) -> B.
    # Sample 2: confident teacher, scrambled pose (one limb 6x too long) -> B if KPS rejects it.
    scrambled = real[i].clone()
    scrambled[9] = scrambled[7] + 6 * (scrambled[9] - scrambled[7])
    coords = torch.stack([real[i], real[i], scrambled])
    peaks = torch.tensor([1.0, 0.3, 1.0])[:, None, None, None]
    heat = torch.rand(3, 17, 64, 48) * 0.01
    heat[..., 10, 10] = 1.0
    heat = heat * peaks
    d = gate(heat, coords)
    kps = gate.kps(coords).kps
    expected = (d.conf >= 0.5) & (kps >= 0.2)
    assert torch.equal(d.use_teacher_a, expected)
    assert d.use_teacher_a[0] and not d.use_teacher_a[1]
    assert d.num_teacher_a + d.num_teacher_b == 3
    assert (kps[2] < kps[0]).item()


def test_keypoint_level_gate(repo_root, syrip_root):
    kps = dict(type='KinematicPlausibilityScore',
               stats_file=str(repo_root / 'stats/skeleton_stats.json'))
    kp_gate = HybridGate(kps=kps, thr_conf=0.5, thr_kps=0.0, level='keypoint')
    coords = _val_poses(syrip_root, 1)
    heat = torch.zeros(1, 17, 64, 48)
    heat[0, :9, 5, 5] = 0.9  # first 9 keypoints confident
    d = kp_gate(heat, coords)
    assert d.use_teacher_a.shape == (1, 17)
    assert d.use_teacher_a[0, :9].all() and not d.use_teacher_a[0, 9:].any()
