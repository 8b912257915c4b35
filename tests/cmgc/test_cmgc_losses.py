"""CMGC losses on synthetic geometry with known answers: real labeled poses lifted to 3D with
chosen depths and rendered the way Sapiens' teacher outputs are made (relative depth:
foreground min-max, background -1; unit normals, x right / y down / z away; see
``synthetic_body.py``)."""
from __future__ import annotations

import pytest
import torch
from synthetic_body import SKELETON, lifted_body

from nk_train.cmgc.losses import CMGCLoss, sample_maps

NAME = {n: i for i, n in enumerate(SKELETON.keypoint_names)}
ALL = torch.ones(1, SKELETON.num_keypoints)


@pytest.fixture(scope='module')
def body(syrip_root):
    return lifted_body(syrip_root, index=3)


@pytest.fixture(scope='module')
def loss_fn(body):
    """The losses with the body's own 3D limb proportions as the reference."""
    return CMGCLoss('stats/skeleton_stats.json', reference_lengths=body.limb_lengths_3d())


def _losses(loss_fn, body, coords=None, depth=None, normal=None, valid=None):
    out = loss_fn(body.coords if coords is None else coords, ALL,
                  body.depth if depth is None else depth,
                  body.normal if normal is None else normal,
                  body.valid if valid is None else valid)
    return {k: float(v) for k, v in out.items()}


def _flat(body):
    """The same silhouette with no depth relief: only 2D lengths remain."""
    return torch.where(body.valid > 0, torch.full_like(body.depth, 0.5), body.depth)


def test_sample_maps_is_exact_on_linear_maps():
    ys, xs = torch.meshgrid(torch.arange(64.0), torch.arange(48.0), indexing='ij')
    depth = (5.0 + 0.3 * xs - 0.2 * ys)[None, None]
    pts = torch.tensor([[[0.0, 0.0], [10.5, 20.25], [47.0, 63.0]]])
    torch.testing.assert_close(sample_maps(depth, pts)[0, :, 0],
                               5.0 + 0.3 * pts[0, :, 0] - 0.2 * pts[0, :, 1])


def test_depth_term_uses_depth_where_limbs_are_foreshortened(loss_fn, body):
    """The true pose fits its 3D proportions once the depth map lifts it: far below the same
    pose judged by 2D lengths only (the flat map), which the foreshortened limbs violate; and
    the fitted scale is the renderer's (pixels per unit of relative depth)."""
    true = _losses(loss_fn, body)['loss_geo_depth']
    two_d = _losses(loss_fn, body, depth=_flat(body))['loss_geo_depth']
    assert true < 2e-3 and two_d > 50 * true, (true, two_d)
    vec, dz, w, _ = loss_fn._limbs(body.coords, ALL, body.depth, body.valid)
    scale, _ = loss_fn._fit_scale(vec, dz, w, loss_fn._depth_range(body.depth, body.valid))
    assert scale.item() == pytest.approx(body.depth_range, rel=0.15)


def test_changing_one_limb_in_2d_raises_the_depth_term(loss_fn, body):
    """The left forearm shortened by 30 % in 2D (the wrist moved along it, still on the
    body), the depth map unchanged."""
    coords = body.coords.clone()
    wrist, elbow = NAME['left_wrist'], NAME['left_elbow']
    coords[0, wrist] = coords[0, elbow] + 0.7 * (coords[0, wrist] - coords[0, elbow])
    true = _losses(loss_fn, body)['loss_geo_depth']
    changed = _losses(loss_fn, body, coords=coords)['loss_geo_depth']
    assert changed > 5 * true, (true, changed)


def test_depth_term_is_invariant_to_an_affine_change_of_the_depth_map(loss_fn, body):
    for a, b in [(3.7, -1.2), (0.05, 40.0)]:
        depth = torch.where(body.valid > 0, a * body.depth + b, body.depth)
        got, want = _losses(loss_fn, body, depth=depth), _losses(loss_fn, body)
        assert got['loss_geo_depth'] == pytest.approx(want['loss_geo_depth'], rel=1e-3)
        assert got['loss_geo_normal'] == pytest.approx(want['loss_geo_normal'], rel=1e-3)


def test_normal_term_responds_to_the_z_component(loss_fn, body):
    """Cylinder normals are orthogonal to each limb's 3D direction; with n_z flipped (another
    convention of the normal model) or dropped they are not."""
    true = _losses(loss_fn, body)['loss_geo_normal']
    flipped = body.normal.clone()
    flipped[:, 2] *= -1
    no_z = body.normal.clone()
    no_z[:, 2] = 0
    assert _losses(loss_fn, body, normal=flipped)['loss_geo_normal'] > 5 * true
    assert _losses(loss_fn, body, normal=no_z)['loss_geo_normal'] > 2 * true


def test_masked_keypoints_change_neither_term(loss_fn, body):
    """Around the left wrist the teacher's map is invalid (background, a crop border): moving
    the wrist inside that region, or changing the maps there, changes nothing."""
    wrist = body.coords[0, NAME['left_wrist']]
    ys, xs = torch.meshgrid(torch.arange(body.depth.shape[2], dtype=torch.float32),
                            torch.arange(body.depth.shape[3], dtype=torch.float32),
                            indexing='ij')
    hole = ((xs - wrist[0]) ** 2 + (ys - wrist[1]) ** 2 <= 36.0)[None, None]
    valid = body.valid * (~hole).float()
    base = _losses(loss_fn, body, valid=valid)
    moved = body.coords.clone()
    moved[0, NAME['left_wrist']] += torch.tensor([2.5, -1.5])
    assert _losses(loss_fn, body, coords=moved, valid=valid) == base
    depth = torch.where(hole, torch.full_like(body.depth, 7.0), body.depth)
    normal = torch.where(hole, torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1), body.normal)
    assert _losses(loss_fn, body, depth=depth, normal=normal, valid=valid) == base
    # ... while the same edits with the wrist valid do change the terms
    assert _losses(loss_fn, body, coords=moved) != _losses(loss_fn, body)


def test_background_keypoint_does_not_count(loss_fn, body):
    """A keypoint on the background (depth -1) samples no depth: its limbs drop out instead
    of stretching to the background's value."""
    off = body.coords.clone()
    off[0, NAME['left_ankle']] = torch.tensor([1.0, 1.0])  # a corner of the map: background
    assert body.valid[0, 0, 1, 1] == 0
    moved_far = off.clone()
    moved_far[0, NAME['left_ankle']] = torch.tensor([2.0, 1.0])
    assert _losses(loss_fn, body, coords=off) == _losses(loss_fn, body, coords=moved_far)


def test_stats_reference_and_gradients_in_float32_under_autocast(body, repo_root):
    loss_fn = CMGCLoss(str(repo_root / 'stats/skeleton_stats.json'))
    coords = body.coords.clone().requires_grad_(True)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = loss_fn(coords.bfloat16(), ALL.bfloat16(), body.depth.bfloat16(),
                      body.normal.bfloat16(), body.valid)
    assert all(v.dtype == torch.float32 for v in out.values())
    (out['loss_geo_depth'] + out['loss_geo_normal']).backward()
    assert torch.isfinite(coords.grad).all() and coords.grad.abs().sum() > 0


def test_no_weight_no_valid_limb_means_zero_loss(loss_fn, body):
    out = loss_fn(body.coords, torch.zeros_like(ALL), body.depth, body.normal, body.valid)
    assert out['loss_geo_depth'].item() == 0.0 and out['loss_geo_normal'].item() == 0.0
    out = loss_fn(body.coords, ALL, body.depth, body.normal, torch.zeros_like(body.valid))
    assert out['loss_geo_depth'].item() == 0.0 and out['loss_geo_normal'].item() == 0.0


def test_requested_terms_only_and_bad_input(loss_fn, body):
    out = loss_fn(body.coords, ALL, body.depth, None, body.valid, terms=('loss_geo_depth',))
    assert set(out) == {'loss_geo_depth', 'geo_depth_ratio'}
    assert loss_fn(body.coords, ALL, body.depth, None, terms=()) == {}
    with pytest.raises(ValueError, match='unknown terms'):
        loss_fn(body.coords, ALL, body.depth, None, terms=('loss_geo_dpeth',))
    with pytest.raises(FloatingPointError, match='non-finite keypoints'):
        loss_fn(body.coords * float('nan'), ALL, body.depth, body.normal)
    with pytest.raises(ValueError, match='unknown limbs'):
        CMGCLoss('stats/skeleton_stats.json', reference_lengths={'left_hip-nose': 1.0})
