"""CMGC losses on analytic geometry: zero where consistent, growing where not, finite grads."""
from __future__ import annotations

import math

import pytest
import torch

from nk_train.cmgc.losses import CMGCLoss, sample_maps
from nk_train.skeleton import load_skeleton

H, W = 64, 48
SKEL = load_skeleton()
NAME = {n: i for i, n in enumerate(SKEL.keypoint_names)}


@pytest.fixture(scope='module')
def loss_fn(repo_root):
    return CMGCLoss(str(repo_root / 'stats/skeleton_stats.json'), depth_scale=2.0)


def plane(a: float, b: float, z0: float = 5.0, depth_scale: float = 2.0):
    """Depth z = z0 + a x + b y and its unit normal for 3D points (x, y, s z)."""
    ys, xs = torch.meshgrid(torch.arange(H, dtype=torch.float32),
                            torch.arange(W, dtype=torch.float32), indexing='ij')
    depth = (z0 + a * xs + b * ys)[None, None]
    n = torch.tensor([-depth_scale * a, -depth_scale * b, 1.0])
    normal = (n / n.norm()).view(1, 3, 1, 1).expand(1, 3, H, W).clone()
    return depth, normal


def random_pose(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, SKEL.num_keypoints, 2, generator=g) * torch.tensor([W - 1, H - 1])


def leg_chain(loss_fn, lengths_3d: tuple[float, float], drop: float = 0.0):
    """Ankle -> knee -> hip coordinates whose 3D lengths are ``lengths_3d`` when the knee
    lies ``drop`` depth-pixels away (its 2D offset shrinks accordingly). Only the three
    joints get weight, so only the two leg limbs count."""
    coords = torch.full((1, SKEL.num_keypoints, 2), 20.0)
    a, k, h = NAME['left_ankle'], NAME['left_knee'], NAME['left_hip']
    coords[0, a] = torch.tensor([10.0, 50.0])
    coords[0, k] = coords[0, a] + torch.tensor([0.0, -math.sqrt(lengths_3d[0] ** 2 - drop ** 2)])
    coords[0, h] = coords[0, k] + torch.tensor([lengths_3d[1], 0.0])
    weights = torch.zeros(1, SKEL.num_keypoints)
    weights[0, [a, k, h]] = 1.0
    return coords, weights


def _ref(loss_fn, names):
    edges = [tuple(e) for e in loss_fn.edges.tolist()]
    return [loss_fn.log_ref[edges.index((NAME[x], NAME[y]))].exp().item() for x, y in names]


def test_sample_maps_is_exact_on_linear_maps():
    depth, _ = plane(0.3, -0.2)
    pts = torch.tensor([[[0.0, 0.0], [10.5, 20.25], [47.0, 63.0]]])
    got = sample_maps(depth, pts)[0, :, 0]
    want = 5.0 + 0.3 * pts[0, :, 0] - 0.2 * pts[0, :, 1]
    torch.testing.assert_close(got, want)


def test_normal_loss_zero_on_plane_and_grows_off_plane(loss_fn):
    coords, weights = random_pose(), torch.ones(1, SKEL.num_keypoints)
    depth, normal = plane(0.05, -0.08)
    out = loss_fn(coords, weights, depth, normal)
    assert out['loss_geo_normal'].item() < 1e-8
    # The same limbs against normals of another plane: no longer tangent.
    _, tilted = plane(-0.4, 0.3)
    assert loss_fn(coords, weights, depth, tilted)['loss_geo_normal'].item() > 1e-3
    # A limb lying along the normal direction scores its full cos^2 = 1.
    facing = torch.zeros(1, 3, H, W)
    facing[:, 0] = 1.0
    horiz = loss_fn(coords, weights, torch.zeros_like(depth), facing)['loss_geo_normal']
    assert 0.0 < horiz.item() < 1.0


def test_depth_loss_zero_when_proportional_and_depth_compensates_foreshortening(loss_fn):
    t_shin, t_thigh = _ref(loss_fn, [('left_ankle', 'left_knee'), ('left_knee', 'left_hip')])
    c = 12.0
    flat = torch.zeros(1, 1, H, W)
    normal = torch.zeros(1, 3, H, W)
    normal[:, 2] = 1.0
    coords, w = leg_chain(loss_fn, (c * t_shin, c * t_thigh))
    assert loss_fn(coords, w, flat, normal)['loss_geo_depth'].item() < 1e-8
    # Twice the size: still zero (scale invariant).
    assert loss_fn(coords * 2, w, flat, normal)['loss_geo_depth'].item() < 1e-8
    # Foreshortened shin (knee 8 depth-pixels nearer): wrong without depth ...
    drop = 8.0
    coords, w = leg_chain(loss_fn, (c * t_shin, c * t_thigh), drop=drop)
    wrong = loss_fn(coords, w, flat, normal)['loss_geo_depth'].item()
    assert wrong > 1e-3
    # ... and zero again when the depth map holds the knee's depth difference. Depth varies
    # only along y: the shin is vertical, the thigh horizontal (no depth change along it).
    ay = coords[0, NAME['left_ankle'], 1].item()
    ky = coords[0, NAME['left_knee'], 1].item()
    slope = (drop / loss_fn.depth_scale) / (ky - ay)
    ys = torch.arange(H, dtype=torch.float32)
    depth = (slope * (ys - ay)).view(1, 1, H, 1).expand(1, 1, H, W)
    fixed = loss_fn(coords, w, depth, normal)['loss_geo_depth'].item()
    assert fixed < 1e-6 < wrong


def test_gradients_finite_float32_under_autocast(loss_fn):
    coords = random_pose(1).requires_grad_(True)
    coords_in = coords.clone()
    coords_in.data[0, 1] = coords_in.data[0, 2]  # a zero-length limb (eye-eye)
    depth, normal = plane(0.1, 0.1)
    weights = torch.rand(1, SKEL.num_keypoints)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = loss_fn(coords_in.bfloat16(), weights.bfloat16(), depth.bfloat16(),
                      normal.bfloat16())
    assert all(v.dtype == torch.float32 for v in out.values())
    (out['loss_geo_depth'] + out['loss_geo_normal']).backward()
    assert torch.isfinite(coords.grad).all()


def test_no_weight_means_zero_loss(loss_fn):
    depth, normal = plane(0.1, 0.0)
    out = loss_fn(random_pose(2), torch.zeros(1, SKEL.num_keypoints), depth, normal)
    assert out['loss_geo_depth'].item() == 0.0 and out['loss_geo_normal'].item() == 0.0


def test_requested_terms_only(loss_fn):
    """``terms`` selects what is computed: the depth term needs no normal map at all."""
    coords = torch.rand(2, 17, 2) * 40
    weights = torch.ones(2, 17)
    depth = torch.rand(2, 1, 64, 48)
    out = loss_fn(coords, weights, depth, None, terms=('loss_geo_depth',))
    assert set(out) == {'loss_geo_depth'}
    assert loss_fn(coords, weights, depth, None, terms=()) == {}
    with pytest.raises(ValueError, match='unknown terms'):
        loss_fn(coords, weights, depth, None, terms=('loss_geo_dpeth',))
