"""tools/tune_on_val.py: a variant's model overrides and config lines both reach the config its
run trains with, and the record says what each variant changed."""
from __future__ import annotations

import argparse

import pytest
from script_loader import load_script


@pytest.fixture
def tuner(monkeypatch):
    """The tool with training replaced: train.py leaves a best checkpoint, the validation row
    is read as given."""
    module = load_script('tools/tune_on_val.py')

    def fake_tool(args, log, threads=1):
        (log.parent / 'best_teacher_coco_AP_iter_20.pth').write_bytes(b'')
        return ''

    monkeypatch.setattr(module, 'tool', fake_tool)
    monkeypatch.setattr(module, 'val_metrics',
                        lambda run_dir, best: dict(AP=0.3, AP50=0.6, AP75=0.2, AR=0.4))
    return module


def test_model_overrides_and_config_lines_reach_the_run(tuner, tmp_path):
    from mmengine.config import Config

    args = argparse.Namespace(method='baseline', seed=0, stage1_iters=None)
    stage0 = tmp_path / 'best_coco_AP_iter_10.pth'
    record = tuner.tune('kc2_r31', 'semi_train_cfg=dict(kpt_cutout_num=2)',
                        'train_dataloader = dict(sampler=dict(source_ratio=[3, 1]))',
                        args, stage0, tmp_path, threads=1)
    cfg = Config.fromfile(str(tmp_path / 'baseline_seed0_kc2_r31' / 'config.py'))
    assert cfg.model.semi_train_cfg.kpt_cutout_num == 2
    base = Config.fromfile(str(tuner.config('stage1_ssl_baseline', 'cpu')))
    # the rest of the CPU config is kept
    assert cfg.model.semi_train_cfg.lambda_cons == base.model.semi_train_cfg.lambda_cons
    assert cfg.model.init_from == str(stage0)
    assert cfg.train_dataloader.sampler.source_ratio == [3, 1]
    assert cfg.train_dataloader.sampler.batch_size == 16
    assert record['config_lines'] == 'train_dataloader = dict(sampler=dict(source_ratio=[3, 1]))'
    assert record['best_checkpoint'] == 'best_teacher_coco_AP_iter_20.pth'


def test_a_variant_without_lines_records_none(tuner, tmp_path):
    args = argparse.Namespace(method='baseline', seed=0, stage1_iters=None)
    record = tuner.tune('base', '', '', args, tmp_path / 'stage0.pth', tmp_path, threads=1)
    assert 'config_lines' not in record and record['overrides'] == ''
