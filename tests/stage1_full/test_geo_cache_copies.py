"""``--cfg-options geo_cache.root=...`` does not reach the copies of geo_cache that the Stage1
configs hand to LoadGeoCacheMaps and the model: training refuses before its first iteration,
naming each copy and both values (GeoCacheCopiesHook)."""
from __future__ import annotations

import pytest
from full_helpers import ABLATIONS_CPU, ABLATIONS_FULL, subset_options
from mmengine.config import Config


@pytest.mark.parametrize('path', [*ABLATIONS_CPU.values(), *ABLATIONS_FULL.values()])
def test_every_stage1_config_checks_its_geo_cache_copies(repo_root, path):
    from nk_train.engine.geo_cache_copies_hook import geo_cache_copy_differences

    cfg = Config.fromfile(str(repo_root / path))
    assert any(h.type == 'GeoCacheCopiesHook' for h in cfg.custom_hooks)
    assert geo_cache_copy_differences(cfg) == []  # as written, every copy is geo_cache


def test_root_override_missing_the_copies_refuses_to_train(repo_root, stage0_ckpt, prior_ckpt,
                                                          geo_cache_root, tmp_path):
    from mmengine.runner import Runner

    cfg = Config.fromfile(str(repo_root / ABLATIONS_CPU['cmgc']))
    moved = tmp_path / 'moved_cache'
    cfg.merge_from_dict({
        'work_dir': str(tmp_path / 'work'), 'model.init_from': str(stage0_ckpt),
        'model.ddp_prior.checkpoint': str(prior_ckpt), 'train_cfg.max_iters': 2,
        'train_dataloader.batch_size': 4, 'train_dataloader.sampler.batch_size': 4,
        'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False,
        **subset_options({'root': str(geo_cache_root)}, cmgc=True),
        'geo_cache.root': str(moved),  # what a user moving the cache would pass
    })
    cfg.visualizer.name = 'visualizer_geo_cache_copies'
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.default_hooks.checkpoint.pop('save_best')
    runner = Runner.from_cfg(cfg)
    copy = 'train_dataloader.dataset.datasets.1.dataset.pipeline.3.cache.root'
    with pytest.raises(ValueError, match=rf"{copy} = '{geo_cache_root}', but geo_cache.root = "
                                         rf"'{moved}'"):
        runner.train()
    assert not list((tmp_path / 'work').rglob('*.pth'))
