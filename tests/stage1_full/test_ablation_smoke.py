"""Each CPU ablation config trains 50 iterations on real SyRIP subsets: finite losses, the
terms it switches on (and only those) in the log, and the Teacher A/B counts every iteration.
The full config also trains with ``--amp`` (what tools/train.py does with it)."""
from __future__ import annotations

import json
import math

import pytest
import torch
from full_helpers import ABLATIONS_CPU, subset_options
from mmengine.config import Config

SMOKE_ITERS = 50
BATCH = 4  # 2 labeled + 2 unlabeled crops
TERMS = {
    'baseline': {'loss_cons'},
    'ddp': {'loss_cons', 'loss_dev'},
    'cmgc': {'loss_cons', 'loss_geo_depth', 'loss_geo_normal'},
    'ddp_cmgc': {'loss_cons', 'loss_dev', 'loss_geo_depth', 'loss_geo_normal'},
    'ddp_gate': {'loss_cons', 'loss_dev'},
    'full': {'loss_cons', 'loss_dev', 'loss_geo_depth', 'loss_geo_normal'},
}
ALL_TERMS = set().union(*TERMS.values())
GATED = {'full', 'ddp_gate'}  # the ablations with the Hybrid gate on


def _train(repo_root, config, work, stage0_ckpt, prior_ckpt, geo_cache_root,
           iters: int = SMOKE_ITERS, amp: bool = False) -> tuple[list[dict], list]:
    """Train; return the logged rows and the dtype of every student heatmap forward."""
    from mmengine.runner import Runner

    from nk_train.engine.amp import enable_amp

    cfg = Config.fromfile(str(repo_root / config))
    cmgc = any(cfg.model.semi_train_cfg[k] > 0 for k in ('lambda_geo_depth',
                                                         'lambda_geo_normal'))
    cfg.merge_from_dict({
        'work_dir': str(work), 'model.init_from': str(stage0_ckpt),
        'model.ddp_prior.checkpoint': str(prior_ckpt),
        'train_cfg.max_iters': iters, 'default_hooks.checkpoint.interval': iters,
        'default_hooks.logger.interval': min(10, iters), 'train_dataloader.batch_size': BATCH,
        'train_dataloader.sampler.batch_size': BATCH, 'train_dataloader.num_workers': 0,
        'train_dataloader.persistent_workers': False,
        **subset_options({'root': str(geo_cache_root)}, cmgc),
    })
    # one visualizer per run: mmengine reuses a visualizer of the same name, whose vis_data
    # directory is the first run's
    cfg.visualizer.name = f'visualizer_{work.name}'
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.default_hooks.checkpoint.pop('save_best')
    if amp:
        enable_amp(cfg)
    runner = Runner.from_cfg(cfg)
    dtypes = []
    head = runner.model.student.head  # its loss() calls forward() directly: hook a layer
    head.final_layer.register_forward_hook(lambda m, i, out: dtypes.append(out.dtype))
    runner.train()
    rows = [json.loads(line) for line in
            sorted(work.glob('*/vis_data/scalars.json'))[-1].read_text().splitlines()]
    return [r for r in rows if 'loss' in r], dtypes


@pytest.mark.parametrize('name', list(ABLATIONS_CPU))
def test_ablation_trains_fifty_iterations(name, repo_root, stage0_ckpt, prior_ckpt,
                                          geo_cache_root, tmp_path):
    rows, _ = _train(repo_root, ABLATIONS_CPU[name], tmp_path, stage0_ckpt, prior_ckpt,
                     geo_cache_root)
    assert max(r['iter'] for r in rows) == SMOKE_ITERS
    for row in rows:
        assert TERMS[name] <= set(row), (name, sorted(row))
        assert not (ALL_TERMS - TERMS[name]) & set(row), (name, sorted(row))
        for key in ('loss', 'loss_sup', *TERMS[name], 'num_use_teacherA', 'num_use_teacherB'):
            assert math.isfinite(row[key]), (name, key, row[key])
        unlabeled = BATCH // 2
        assert 0 <= row['num_use_teacherA'] <= unlabeled
        if name in GATED:  # the gate gives every unlabeled sample to exactly one teacher
            assert row['num_use_teacherA'] + row['num_use_teacherB'] == pytest.approx(unlabeled)
        elif 'loss_dev' in TERMS[name]:  # without gating L_dev covers every sample
            assert row['num_use_teacherB'] == unlabeled
        else:
            assert row['num_use_teacherB'] == 0
    assert (tmp_path / f'iter_{SMOKE_ITERS}.pth').is_file()


def test_full_config_trains_under_amp(repo_root, stage0_ckpt, prior_ckpt, geo_cache_root,
                                      tmp_path):
    """``--amp``: the student's forward really runs in bf16, every term stays finite (the
    float32 islands are checked term by term in test_unsup_terms.py)."""
    iters = 10
    rows, dtypes = _train(repo_root, ABLATIONS_CPU['full'], tmp_path, stage0_ckpt, prior_ckpt,
                          geo_cache_root, iters=iters, amp=True)
    assert dtypes and set(dtypes) == {torch.bfloat16}
    assert max(r['iter'] for r in rows) == iters
    for row in rows:
        for key in ('loss', 'loss_sup', *TERMS['full'], 'num_use_teacherA', 'num_use_teacherB'):
            assert math.isfinite(row[key]), (key, row[key])
