"""The full/ablation configs: each switches on exactly its terms; the geometric cache dicts
the CPU configs use equal _base_/geo_cache_cpu.py; lambda 0 means no cache reads."""
from __future__ import annotations

import pytest
from full_helpers import ABLATIONS_CPU, ABLATIONS_FULL, GEO_CACHE_CPU, STAGE0_CPU
from mmengine.config import Config

EXPECTED = {  # (L_dev on, CMGC on, gate on)
    'baseline': (False, False, False), 'ddp': (True, False, False),
    'cmgc': (False, True, False), 'ddp_cmgc': (True, True, False), 'full': (True, True, True),
    'ddp_gate': (True, False, True),
}


def _cfg(repo_root, path):
    return Config.fromfile(str(repo_root / path))


@pytest.mark.parametrize('path', [STAGE0_CPU, ABLATIONS_CPU['baseline'], ABLATIONS_CPU['full']])
def test_cpu_configs_restate_the_cpu_geo_cache_exactly(repo_root, path):
    expected = _cfg(repo_root, GEO_CACHE_CPU).geo_cache.to_dict()
    cfg = _cfg(repo_root, path)
    assert cfg.geo_cache.to_dict() == expected
    if 'model' in cfg and 'geo_cache' in cfg.model:
        assert cfg.model.geo_cache.to_dict() == expected


@pytest.mark.parametrize('table', [ABLATIONS_CPU, ABLATIONS_FULL])
@pytest.mark.parametrize('name', list(EXPECTED))
def test_each_ablation_switches_on_its_terms(repo_root, table, name):
    cfg = _cfg(repo_root, table[name])
    train = cfg.model.semi_train_cfg
    dev, cmgc, gate = EXPECTED[name]
    assert (train.lambda_dev > 0) == dev
    assert (train.lambda_geo_depth > 0 and train.lambda_geo_normal > 0) == cmgc
    assert (cfg.model.gate is not None) == gate
    assert train.lambda_dev == cfg.lambda_dev and train.lambda_cons == cfg.lambda_cons
    pipeline = [t.type for t in cfg.train_dataloader.dataset.datasets[1].dataset.pipeline]
    # lambda 0 -> no cache reads at all
    assert ('LoadGeoCacheMaps' in pipeline) == cmgc
    if cmgc:
        crop, load = cfg.train_dataloader.dataset.datasets[1].dataset.pipeline[2:4]
        assert load.type == 'LoadGeoCacheMaps' and load.split == 'unlabeled'
        assert load.cache.to_dict() == cfg.geo_cache.to_dict()
        assert tuple(crop.input_size) == tuple(cfg.geo_cache.input_size)  # the cache's crop
        assert cfg.train_dataloader.dataset.datasets[1].dataset.pipeline[4].pack.type == \
            'PackGeoViewInputs'
    if gate:
        assert cfg.model.consistency_loss.target == 'hard'
        assert cfg.model.gate.thr_conf == cfg.gate_thr_conf
        assert cfg.model.gate.thr_kps == cfg.gate_thr_kps
