"""The Stage1 configs agree with Stage0, the geometric cache and themselves."""
from __future__ import annotations

import pytest
from mmengine.config import Config
from stage1_helpers import STAGE0_CPU, STAGE1_CPU, STAGE1_FULL

GEO_CACHE = 'configs/nk_sapiens/infant/_base_/geo_cache.py'
GEO_CACHE_CPU = 'configs/nk_sapiens/infant/_base_/geo_cache_cpu.py'


def _cfg(repo_root, path):
    return Config.fromfile(str(repo_root / path))


def test_cpu_stage1_pose_model_is_the_stage0_cpu_model(repo_root):
    """A Stage0 CPU checkpoint must fit the CPU Stage1 student and teacher."""
    s0 = _cfg(repo_root, STAGE0_CPU).model.to_dict()
    s1 = _cfg(repo_root, STAGE1_CPU).model.pose_model.to_dict()
    s0['backbone'].pop('init_cfg'), s1['backbone'].pop('init_cfg')
    assert s0 == s1


@pytest.mark.parametrize('stage1,cache', [(STAGE1_FULL, GEO_CACHE), (STAGE1_CPU, GEO_CACHE_CPU)])
def test_weak_view_is_the_geometric_cache_view(repo_root, stage1, cache):
    """Same seeds, ranges, K and crop size as the cache, so cached rows match the weak view."""
    cfg, geo = _cfg(repo_root, stage1), _cfg(repo_root, cache).geo_cache
    unlabeled = cfg.train_dataloader.dataset.datasets[1]
    crop = unlabeled.dataset.pipeline[2]
    assert crop.type == 'SeededTopdownAffine'
    assert crop.global_seed == geo.global_seed
    assert crop.aug.to_dict() == geo.aug.to_dict()
    assert tuple(crop.input_size) == tuple(geo.input_size)
    assert unlabeled.num_seeds == geo.splits.unlabeled.num_seeds
    assert unlabeled.dataset.ann_file == geo.splits.unlabeled.ann_file
    assert unlabeled.dataset.pipeline[1] == dict(type='GetBBoxCenterScale')
    assert geo.bbox_padding == 1.25  # GetBBoxCenterScale's default padding


@pytest.mark.parametrize('path', [STAGE1_FULL, STAGE1_CPU])
def test_stage1_settings_are_consistent(repo_root, path):
    cfg = _cfg(repo_root, path)
    loader = cfg.train_dataloader
    assert loader.sampler.batch_size == loader.batch_size  # composes batches by source
    assert loader.collate_fn.type == 'ssl_collate'
    assert cfg.model.semi_train_cfg.lambda_cons == cfg.lambda_cons
    assert cfg.optim_wrapper.constructor == 'StudentLayerDecayOptimWrapperConstructor'
    assert [h.type for h in cfg.custom_hooks].count('TeacherEMAHook') == 1
    branch = cfg.model.semi_test_cfg.forward_on
    assert cfg.val_evaluator.prefix == cfg.test_evaluator.prefix == f'{branch}/coco'
    assert cfg.default_hooks.checkpoint.save_best == f'{branch}/coco/AP'
    assert cfg.model.consistency_loss.sigma == cfg.model.pose_model.head.decoder.sigma
    assert cfg.model.pose_model.backbone.init_cfg is None  # the Stage0 checkpoint supersedes it
