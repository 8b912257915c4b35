"""The cache's instance list equals mmpose's CocoDataset (order, ids, boxes), and
SeededViewDataset maps index i to (instance i // K, view i % K)."""
from __future__ import annotations

import numpy as np
import pytest
from mmengine.registry import init_default_scope

import nk_train  # noqa: F401
from nk_train.cache.instances import list_instances
from nk_train.data.seeded_views import SeededViewDataset
from nk_train.skeleton import DEFAULT_DATASET_INFO

init_default_scope('mmpose')


def _coco_dataset(root, ann, img_prefix, test_mode=False, indices=None, pipeline=()):
    from mmpose.datasets import CocoDataset

    return CocoDataset(data_root=str(root), ann_file=ann, data_prefix=dict(img=img_prefix),
                       data_mode='topdown', test_mode=test_mode, indices=indices,
                       metainfo=dict(from_file=str(DEFAULT_DATASET_INFO)),
                       pipeline=list(pipeline))


@pytest.mark.parametrize('ann,test_mode', [('annotations/train_labeled.json', False),
                                           ('annotations/val_test100.json', True)])
def test_instances_match_mmpose_coco_dataset(syrip_root, ann, test_mode):
    ds = _coco_dataset(syrip_root, ann, 'images/', test_mode)
    ours = list_instances(syrip_root / ann, syrip_root / 'images', require_keypoints=True)
    assert ours.sample_ids == [ds.get_data_info(i)['id'] for i in range(len(ds))]
    for i, inst in enumerate(ours.instances):
        info = ds.get_data_info(i)
        np.testing.assert_array_equal(np.asarray(inst.bbox_xyxy, np.float32), info['bbox'][0])
        assert inst.img_path == info['img_path']


def test_instances_match_on_multi_person_coco(coco_mini_root):
    ann = 'test_coco.json'
    ds = _coco_dataset(coco_mini_root, ann, '')
    ours = list_instances(coco_mini_root / ann, coco_mini_root, require_keypoints=True)
    assert ours.sample_ids == [ds.get_data_info(i)['id'] for i in range(len(ds))]
    assert len(ours.excluded) == 14 - len(ds)  # dropped ones are listed with a reason
    assert all(reason for _, reason in ours.excluded)


def test_unlabeled_pool_keeps_every_instance(syrip_root):
    ann = syrip_root / 'annotations' / 'train_unlabeled.json'
    kept = list_instances(ann, syrip_root / 'images', require_keypoints=False)
    assert len(kept) == 300 and not kept.excluded
    dropped = list_instances(ann, syrip_root / 'images', require_keypoints=True)
    assert len(dropped) == 0 and len(dropped.excluded) == 300
    sub = kept.select([5, 2])
    assert sub.sample_ids == [kept.sample_ids[5], kept.sample_ids[2]] and sub.subset == (5, 2)


def test_seeded_view_dataset_indexing(syrip_root):
    inner = dict(type='CocoDataset', data_root=str(syrip_root),
                 ann_file='annotations/train_labeled.json', data_prefix=dict(img='images/'),
                 data_mode='topdown', indices=[3, 0, 7],
                 metainfo=dict(from_file=str(DEFAULT_DATASET_INFO)), pipeline=[])
    ds = SeededViewDataset(inner, num_seeds=3, lazy_init=True)
    assert not ds._fully_initialized
    assert len(ds) == 9 and ds._fully_initialized
    ids = [ds.dataset.get_data_info(n)['id'] for n in range(3)]
    for i in range(9):
        item = ds[i]
        assert (item['nk_sample_id'], item['geo_seed_k']) == (ids[i // 3], i % 3)
        assert 'flip_indices' in item  # mmpose metainfo keys still reach the pipeline
    assert ds.metainfo['dataset_name'] == ds.dataset.metainfo['dataset_name']


def test_seeded_view_dataset_refuses_none(syrip_root):
    inner = _coco_dataset(syrip_root, 'annotations/train_labeled.json', 'images/', indices=2,
                          pipeline=[dict(type='RandomHalfBody', prob=0.0)])
    ds = SeededViewDataset(inner, num_seeds=2)
    ds.dataset.pipeline.transforms = [lambda results: None]
    with pytest.raises(RuntimeError, match='pipeline returned None for sample'):
        ds[1]


def test_unlabeled_instances_match_the_unlabeled_dataset(syrip_root):
    """Same ids, order and boxes as the Stage1 unlabeled dataset class."""
    from mmpose.registry import DATASETS

    ds = DATASETS.build(dict(type='UnlabeledCocoDataset', data_root=str(syrip_root),
                             ann_file='annotations/train_unlabeled.json',
                             data_prefix=dict(img='images/'),
                             metainfo=dict(from_file=str(DEFAULT_DATASET_INFO))))
    ours = list_instances(syrip_root / 'annotations' / 'train_unlabeled.json',
                          syrip_root / 'images', require_keypoints=False)
    assert ours.sample_ids == [ds.get_data_info(i)['id'] for i in range(len(ds))]
    for i in (0, 150, 299):
        np.testing.assert_array_equal(np.asarray(ours.instances[i].bbox_xyxy, np.float32),
                                      ds.get_data_info(i)['bbox'][0])
