"""Stage1 data on real SyRIP files: unlabeled crops, mixed batches, aligned weak/strong views."""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from stage1_helpers import STAGE1_CPU

import nk_train  # noqa: F401  (registers everything)
from nk_train.data.mixed_sampler import MixedSourceSampler, split_batch

META = dict(from_file='configs/_base_/datasets/infant_coco17.py')
UNLABELED = 'syrip/annotations/train_unlabeled.json'


@pytest.fixture(scope='module', autouse=True)
def _scope():
    init_default_scope('mmpose')


def _build(cfg):
    from mmpose.registry import DATASETS

    return DATASETS.build(copy.deepcopy(cfg))


def _unlabeled(repo_root, **kwargs):
    cfg = dict(type='UnlabeledCocoDataset', data_root=str(repo_root / 'data') + '/',
               ann_file=UNLABELED, data_prefix=dict(img='syrip/images/'),
               metainfo=dict(from_file=str(repo_root / META['from_file'])))
    cfg.update(kwargs)
    return _build(cfg)


# ---- the unlabeled dataset --------------------------------------------------------------
def test_unlabeled_dataset_keeps_every_box(repo_root, syrip_root):
    raw = json.loads((syrip_root / 'annotations/train_unlabeled.json').read_text())
    ds = _unlabeled(repo_root)
    assert len(ds) == len(raw['annotations']) == 300
    images = {im['id']: im for im in raw['images']}
    outside = [a for a in raw['annotations'] if a['bbox'][0] < 0 or a['bbox'][1] < 0]
    checked = 0
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        ann = next(a for a in raw['annotations'] if a['id'] == info['id'])
        im = images[ann['image_id']]
        x, y, w, h = ann['bbox']
        expect = [max(x, 0), max(y, 0), min(x + w, im['width'] - 1), min(y + h, im['height'] - 1)]
        assert np.allclose(info['bbox'][0], expect), ann['id']
        assert info['img_path'].endswith(im['file_name'])
        assert not info['keypoints'].any() and not info['keypoints_visible'].any()
        assert info['keypoints'].shape == (1, 17, 2)
        checked += ann in outside
    assert checked == len(outside) > 0  # boxes starting outside the image are kept, clipped

    # mmpose's CocoDataset drops every keypoint-less instance in training mode.
    coco = _build(dict(type='CocoDataset', data_root=str(repo_root / 'data') + '/',
                       ann_file=UNLABELED, data_prefix=dict(img='syrip/images/'),
                       metainfo=dict(from_file=str(repo_root / META['from_file'])),
                       serialize_data=False))
    assert len(coco) == 0


def test_bbox_file_replaces_annotation_boxes(repo_root, coco_mini_root):
    dets = json.loads((coco_mini_root / 'test_coco_det_AP_H_56.json').read_text())
    ds = _unlabeled(repo_root, ann_file='coco_mini/test_coco.json',
                    data_prefix=dict(img='coco_mini/images/'),
                    bbox_file='coco_mini/test_coco_det_AP_H_56.json')
    persons = [d for d in dets if d['category_id'] == 1]
    assert len(ds) == len(persons)
    assert [float(ds.get_data_info(i)['bbox_score'][0]) for i in range(len(ds))] == \
        pytest.approx([d['score'] for d in persons])


@pytest.mark.parametrize('flaw,match', [('no_bbox', 'bbox must be four finite numbers'),
                                        ('outside', 'lies wholly outside')])
def test_bad_boxes_name_the_file_and_annotation(repo_root, syrip_root, tmp_path, flaw, match):
    raw = json.loads((syrip_root / 'annotations/train_unlabeled.json').read_text())
    ann = raw['annotations'][7]
    if flaw == 'no_bbox':
        del ann['bbox']
    else:
        ann['bbox'] = [-500.0, -500.0, 100.0, 100.0]
    bad = tmp_path / 'flawed_unlabeled.json'
    bad.write_text(json.dumps(raw))
    with pytest.raises(ValueError, match=match) as err:
        _unlabeled(repo_root, ann_file=str(bad))
    assert 'flawed_unlabeled.json' in str(err.value) and str(ann['id']) in str(err.value)


def test_sources_must_share_the_keypoint_definition(repo_root, syrip_root):
    import mmpose

    from nk_train.data.mixed_sampler import SourceConcatDataset

    mmpose_coco = f'{mmpose.__path__[0]}/.mim/configs/_base_/datasets/coco.py'
    ours = _unlabeled(repo_root, indices=[0, 1])
    theirs = _unlabeled(repo_root, indices=[2], metainfo=dict(from_file=mmpose_coco))
    assert len(SourceConcatDataset([ours, _unlabeled(repo_root, indices=[2])])) == 3
    with pytest.raises(ValueError, match='disagrees with source 0'):
        SourceConcatDataset([ours, theirs])


# ---- batch composition ------------------------------------------------------------------
def test_split_batch():
    assert split_batch(8, [1, 1]) == [4, 4]
    assert split_batch(8, [1, 3]) == [2, 6]
    assert split_batch(7, [1, 1]) in ([4, 3], [3, 4]) and sum(split_batch(7, [1, 1])) == 7
    assert split_batch(8, [0, 1]) == [0, 8]
    with pytest.raises(ValueError, match='too small'):
        split_batch(4, [1, 100])
    with pytest.raises(ValueError):
        split_batch(4, [-1, 2])


class _Sizes:
    """Only what the sampler reads: the ConcatDataset's cumulative sizes."""

    def __init__(self, *sizes):
        self.cumulative_sizes = np.cumsum(sizes).tolist()

    def __len__(self):
        return self.cumulative_sizes[-1]


def _take(sampler, n):
    it = iter(sampler)
    return [next(it) for _ in range(n)]


def test_sampler_composes_every_batch_by_source():
    sampler = MixedSourceSampler(_Sizes(10, 30), batch_size=6, source_ratio=[1, 2], seed=3)
    idx = _take(sampler, 6 * 20)
    for b in range(20):
        batch = idx[6 * b:6 * b + 6]
        assert all(i < 10 for i in batch[:2]) and all(10 <= i < 40 for i in batch[2:])
    first_pass = idx[:6 * 5]  # 5 batches x 2 labeled = one full pass over source 0
    assert sorted(i for i in first_pass if i < 10) == list(range(10))
    assert idx == _take(MixedSourceSampler(_Sizes(10, 30), 6, [1, 2], seed=3), 6 * 20)
    other = MixedSourceSampler(_Sizes(10, 30), 6, [1, 2], seed=3)
    other.set_epoch(1)
    assert _take(other, 60) != idx[:60]


def test_sampler_ranks_are_disjoint(monkeypatch):
    import nk_train.data.mixed_sampler as mod

    per_rank = []
    for rank in (0, 1):
        monkeypatch.setattr(mod, 'get_dist_info', lambda r=rank: (r, 2))
        per_rank.append(_take(MixedSourceSampler(_Sizes(8, 12), 4, [1, 1], seed=5), 4 * 3))
    labeled = [[i for i in idx if i < 8][:4] for idx in per_rank]  # half a pass each
    unlabeled = [[i for i in idx if i >= 8][:6] for idx in per_rank]
    assert not set(labeled[0]) & set(labeled[1])
    assert set(labeled[0]) | set(labeled[1]) == set(range(8))
    assert not set(unlabeled[0]) & set(unlabeled[1])
    assert set(unlabeled[0]) | set(unlabeled[1]) == set(range(8, 20))


# ---- weak / strong views ----------------------------------------------------------------
def _one_view_sample(repo_root, strong_pipeline, num_strong_views=1):
    cfg = Config.fromfile(str(repo_root / STAGE1_CPU))
    ds_cfg = copy.deepcopy(cfg.train_dataloader.dataset.datasets[1])
    ds_cfg.dataset.data_root = str(repo_root / 'data') + '/'
    ds_cfg.dataset.indices = [3]
    views = ds_cfg.dataset.pipeline[-1]
    views.update(strong_pipeline=strong_pipeline, num_strong_views=num_strong_views)
    np.random.seed(0)  # the strong augmentations draw from numpy's global generator
    ds = _build(ds_cfg)
    return ds[2]  # instance 3, seeded view k = 2 (an augmented view)


def test_identity_strong_pipeline_reproduces_the_weak_view(repo_root, syrip_root):
    out = _one_view_sample(repo_root, [])
    assert set(out['inputs']) == {'weak', 'strong_0'}
    assert torch.equal(out['inputs']['weak'], out['inputs']['strong_0'])
    meta = out['data_samples']['weak'].metainfo
    assert meta['geo_seed_k'] == 2 and 'geo_affine' in meta


def test_strong_views_are_pixel_aligned_occlusions(repo_root, syrip_root):
    """Outside the dropped rectangles every strong view equals the weak view exactly."""
    out = _one_view_sample(repo_root, [dict(type='CoarseDropout', prob=1.0, num_holes=(2, 2),
                                            hole_size=(0.1, 0.2), fill=0)], 2)
    weak = out['inputs']['weak']
    for name in ('strong_0', 'strong_1'):
        strong = out['inputs'][name]
        changed = (strong != weak).any(0)
        assert 0 < changed.float().mean() < 0.2
        assert torch.equal(strong[:, ~changed], weak[:, ~changed])
        assert (strong[:, changed] == 0).all()
        for key in ('input_center', 'input_scale', 'geo_affine'):
            assert np.array_equal(out['data_samples'][name].metainfo[key],
                                  out['data_samples']['weak'].metainfo[key])
    assert not torch.equal(out['inputs']['strong_0'], out['inputs']['strong_1'])


def test_a_geometric_strong_transform_is_refused(repo_root, syrip_root):
    with pytest.raises(ValueError, match='must not move pixels'):
        _one_view_sample(repo_root, [dict(type='RandomFlip', prob=1.0)])


# ---- batching and the SSL forward --------------------------------------------------------
def test_mixed_batch_trains_student_only(repo_root, syrip_root):
    from mmpose.registry import MODELS

    from nk_train.data.views import ssl_collate

    cfg = Config.fromfile(str(repo_root / STAGE1_CPU))
    data = cfg.train_dataloader.dataset
    data.datasets[0].update(data_root=str(repo_root / 'data') + '/', indices=[0, 1, 2])
    data.datasets[1].dataset.update(data_root=str(repo_root / 'data') + '/', indices=[0, 1])
    data.datasets[1].dataset.pipeline[-1].num_strong_views = 2
    np.random.seed(0)  # the strong augmentations draw from numpy's global generator
    dataset = _build(data)
    sampler = MixedSourceSampler(dataset, batch_size=4, source_ratio=[1, 1], seed=0)
    items = [dataset[i] for i in _take(sampler, 4)]
    batch = ssl_collate(items)
    assert {k: len(v) for k, v in batch['inputs'].items()} == \
        {'sup': 2, 'weak': 2, 'strong_0': 2, 'strong_1': 2}

    cfg.model.init_from = None
    model = MODELS.build(cfg.model)
    model.train()
    processed = model.data_preprocessor(batch, True)
    reference = model.student.data_preprocessor(
        dict(inputs=batch['inputs']['weak'], data_samples=batch['data_samples']['weak']), True)
    assert torch.equal(processed['inputs']['weak'], reference['inputs'])
    w, h = cfg.codec.input_size
    assert processed['inputs']['strong_0'].shape == (2, 3, h, w)

    model.semi_train_cfg['lambda_cons'] = 2.0
    model.consistency_loss.conf_thr = float('-inf')  # keep all: the teacher is untrained
    losses = model(**processed, mode='loss')
    assert {'loss_sup', 'loss_cons', 'cons_keep_ratio', 'sup_acc_pose'} <= losses.keys()
    assert losses['cons_keep_ratio'].item() == 1.0 and losses['loss_cons'].item() > 0
    with torch.no_grad():  # lambda x the mean over both strong views (eval: no batch stats)
        model.eval()
        # recomputed on the views as given: the keypoint cutout's blanking has its own tests
        model.semi_train_cfg['kpt_cutout_num'] = 0
        in_model = model(**processed, mode='loss')['loss_cons']
        target = model.teacher(processed['inputs']['weak'], None, mode='tensor')
        per_view = [model.consistency_loss(model.student(processed['inputs'][v], None,
                                                         mode='tensor'), target).loss
                    for v in ('strong_0', 'strong_1')]
        model.train()
    assert in_model.item() == pytest.approx(2.0 * sum(per_view).item() / 2, rel=1e-4)
    assert not torch.equal(processed['inputs']['strong_0'], processed['inputs']['strong_1'])
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    assert all(p.grad is None for p in model.teacher.parameters())
    assert model.student.head.final_layer.weight.grad.abs().sum() > 0

    model.semi_train_cfg['lambda_cons'] = 0.0  # lambda = 0 skips teacher and strong passes
    assert 'loss_cons' not in model(**processed, mode='loss')

    with pytest.raises(TypeError, match='not branch-keyed'):
        ssl_collate([dict(inputs=torch.zeros(1), data_samples=None)])
