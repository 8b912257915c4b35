"""Deterministic augmentation: purity, k=0 identity, and agreement with mmpose's own top-down
transforms (TopdownAffine, RandomFlip) on real SyRIP images."""
from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

import nk_train  # noqa: F401  (registers everything)
from nk_train.crop_geometry import (AUG_DEFAULTS, IDENTITY, CropGeometry, DegenerateBBoxError,
                                    SeededAugConfig, apply_affine, bbox_center_scale, crop_affine,
                                    rescale_affine, sample_geometry, udp_warp_matrix)
from nk_train.data.seeded_topdown_affine import SeededTopdownAffine
from nk_train.skeleton import load_skeleton


@pytest.fixture(scope='module')
def syrip_sample(syrip_root):
    """The first labeled instance as mmpose's CocoDataset would give it (image loaded)."""
    coco = json.loads((syrip_root / 'annotations' / 'train_labeled.json').read_text())
    img_info, ann = coco['images'][0], coco['annotations'][0]
    assert ann['image_id'] == img_info['id']
    img = cv2.imread(str(syrip_root / 'images' / img_info['file_name']), cv2.IMREAD_COLOR)
    x, y, w, h = ann['bbox']
    bbox = np.array([[x, y, x + w, y + h]], np.float32)
    kpts = np.array(ann['keypoints'], np.float32).reshape(1, -1, 3)
    return dict(img=img, bbox=bbox, keypoints=kpts[..., :2].copy(),
                keypoints_visible=np.minimum(1, kpts[..., 2]), id=ann['id'],
                img_shape=img.shape[:2], flip_indices=list(load_skeleton().flip_indices))


def _results(sample, k, **extra):
    from mmpose.datasets.transforms import GetBBoxCenterScale

    r = {key: (v.copy() if isinstance(v, np.ndarray) else v) for key, v in sample.items()}
    r = GetBBoxCenterScale(padding=1.25)(r)
    r.update(nk_sample_id=sample['id'], geo_seed_k=k, **extra)
    return r


def test_k0_is_identity_and_geometry_is_pure():
    assert sample_geometry(12, 0, AUG_DEFAULTS, 7) == IDENTITY
    a = [sample_geometry(12, k, AUG_DEFAULTS, 7) for k in range(1, 6)]
    b = [sample_geometry(12, k, dict(AUG_DEFAULTS), 7) for k in range(1, 6)]
    assert a == b
    assert len(set(a)) == len(a)  # different views differ
    assert sample_geometry(12, 1, AUG_DEFAULTS, 8) != a[0]  # the global seed matters
    assert sample_geometry(13, 1, AUG_DEFAULTS, 7) != a[0]  # the sample id matters


def test_changing_one_probability_does_not_shift_other_draws():
    base = dict(AUG_DEFAULTS, rotate_prob=1.0, scale_prob=1.0)
    for sid in range(20):
        g0 = sample_geometry(sid, 1, dict(base, flip_prob=0.0), 3)
        g1 = sample_geometry(sid, 1, dict(base, flip_prob=1.0), 3)
        assert (g0.flip, g1.flip) == (False, True)
        assert (g0.scale, g0.rotation, g0.shift) == (g1.scale, g1.rotation, g1.shift)


def test_geometry_ranges_and_rates():
    aug = SeededAugConfig.from_dict(AUG_DEFAULTS)
    geoms = [sample_geometry(sid, k, aug, 0) for sid in range(400) for k in (1, 2)]
    flips = np.mean([g.flip for g in geoms])
    rotated = np.mean([g.rotation != 0 for g in geoms])
    assert abs(flips - aug.flip_prob) < 0.06 and abs(rotated - aug.rotate_prob) < 0.06
    assert all(aug.scale_factor[0] <= g.scale <= aug.scale_factor[1] for g in geoms)
    assert all(abs(g.rotation) <= aug.rotate_factor for g in geoms)
    assert all(abs(s) <= aug.shift_factor for g in geoms for s in g.shift)


def test_aug_config_rejects_typos_and_bad_values():
    with pytest.raises(ValueError, match='rotate_factr'):
        SeededAugConfig.from_dict(dict(rotate_factr=10))
    with pytest.raises(ValueError, match='flip_prob'):
        SeededAugConfig.from_dict(dict(flip_prob=1.5))
    with pytest.raises(ValueError, match='sample_id'):
        sample_geometry(-1, 1, None, 0)


def test_udp_matrix_equals_mmpose():
    from mmpose.structures.bbox import get_udp_warp_matrix

    rng = np.random.default_rng(0)
    for _ in range(20):
        c, s = rng.uniform(50, 900, 2), rng.uniform(40, 700, 2)
        rot = float(rng.uniform(-60, 60))
        size = (int(rng.integers(32, 400)), int(rng.integers(32, 400)))
        ours = udp_warp_matrix(c, s, rot, size)
        ref = get_udp_warp_matrix(c.astype(np.float32), s.astype(np.float32), rot, size)
        np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-3)


def test_k0_matches_mmpose_topdown_affine(syrip_sample):
    from mmpose.datasets.transforms import TopdownAffine

    ours = SeededTopdownAffine(input_size=(192, 256), aug=AUG_DEFAULTS, global_seed=5)(
        _results(syrip_sample, 0))
    ref = TopdownAffine(input_size=(192, 256), use_udp=True)(_results(syrip_sample, 0))
    assert ours['img'].shape == ref['img'].shape == (256, 192, 3)
    assert np.abs(ours['img'].astype(int) - ref['img'].astype(int)).max() <= 1
    np.testing.assert_allclose(ours['transformed_keypoints'], ref['transformed_keypoints'],
                               atol=1e-3)
    np.testing.assert_allclose(ours['input_scale'], ref['input_scale'], rtol=1e-6)
    np.testing.assert_allclose(ours['input_center'], ref['input_center'], rtol=1e-6)
    assert ours['flip'] is False and ours['geo_affine'].dtype == np.float64


def test_flip_matches_mmpose_random_flip(syrip_sample):
    """A pure flip view equals mmpose's RandomFlip (image + keypoints + left/right swap)
    followed by TopdownAffine."""
    from mmpose.datasets.transforms import RandomFlip, TopdownAffine

    aug = dict(AUG_DEFAULTS, flip_prob=1.0, shift_prob=0.0, scale_prob=0.0, rotate_prob=0.0)
    ours = SeededTopdownAffine(input_size=(192, 256), aug=aug, global_seed=1)(
        _results(syrip_sample, 1))
    ref = _results(syrip_sample, 1)
    ref = RandomFlip(prob=1.0, direction='horizontal')(ref)
    ref = TopdownAffine(input_size=(192, 256), use_udp=True)(ref)
    assert ours['flip'] is True
    assert np.abs(ours['img'].astype(int) - ref['img'].astype(int)).max() <= 1
    vis = ref['keypoints_visible'][0] > 0
    np.testing.assert_array_equal(ours['keypoints_visible'], ref['keypoints_visible'])
    np.testing.assert_allclose(ours['transformed_keypoints'][0][vis],
                               ref['transformed_keypoints'][0][vis], atol=1e-3)


def test_affine_maps_keypoints_and_pixels(syrip_sample):
    """transformed_keypoints == geo_affine @ keypoints, and the crop is the image warped by
    geo_affine, for augmented views (rotation, scale, flip)."""
    t = SeededTopdownAffine(input_size=(192, 256), aug=AUG_DEFAULTS, global_seed=11)
    for k in range(1, 5):
        r = t(_results(syrip_sample, k))
        np.testing.assert_allclose(r['transformed_keypoints'][..., :2],
                                   apply_affine(r['keypoints'], r['geo_affine']), atol=1e-3)
        expect = cv2.warpAffine(syrip_sample['img'], r['geo_affine'], (192, 256),
                                flags=cv2.INTER_LINEAR)
        np.testing.assert_array_equal(r['img'], expect)


def test_teacher_resolution_is_a_rescale_of_the_crop():
    g = CropGeometry(flip=True, scale=0.9, rotation=12.0, shift=(0.05, -0.02))
    c, s = np.array([300.0, 400.0]), np.array([200.0, 380.0])
    crop = crop_affine(c, s, g, (192, 256))
    big = crop_affine(c, s, g, (192, 256), output_size=(768, 1024))
    np.testing.assert_allclose(big, rescale_affine(crop, (192, 256), (768, 1024)), atol=1e-9)


def test_degenerate_boxes_are_refused_with_the_sample_named():
    c, s = bbox_center_scale([10, 10, 10.5, 10.5], 1.25)
    with pytest.raises(DegenerateBBoxError, match='sample 77'):
        crop_affine(c, s, IDENTITY, (192, 256), sample='77')
    with pytest.raises(DegenerateBBoxError, match='non-finite'):
        crop_affine([np.nan, 1.0], [50.0, 50.0], IDENTITY, (192, 256))
