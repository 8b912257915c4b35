"""The configs run in a real Sapiens checkout through Sapiens' own tools, and checkpoints
cross between that stack (its forks) and the project's stock one, strictly.

Everything runs as a Sapiens user runs it: from ``pose/`` of a checkout copy, forks first on
the path, ``python tools/train.py CONFIG ...`` and ``python tools/test.py CONFIG CHECKPOINT``.
"""
from __future__ import annotations

import re

import pytest
import torch
from sapiens_env import CFG, LABELED, REPO_ROOT, UNLABELED, VAL, run

AP = re.compile(r'coco/AP: (-?\d+\.\d+)')
GEO_STEP = 'train_dataloader.dataset.datasets.1.dataset.pipeline.3'


def _train_options(iters: int) -> list[str]:
    return ['--no-validate', '--cfg-options', f'train_cfg.max_iters={iters}',
            f'default_hooks.checkpoint.interval={iters}', 'default_hooks.logger.interval=1']


def _stage1_options(init_from, prior, cache=None) -> list[str]:
    """Subsets, the inputs, and (for a config with CMGC) the cache of the unlabeled subset."""
    geo = [] if cache is None else [f'{GEO_STEP}.indices={UNLABELED}', *[
        f'{key}.root={cache}' for key in ('geo_cache', 'model.geo_cache', f'{GEO_STEP}.cache')]]
    return [f'model.init_from={init_from}', f'model.ddp_prior.checkpoint={prior}',
            f'train_dataloader.dataset.datasets.0.indices={LABELED}',
            f'train_dataloader.dataset.datasets.1.dataset.indices={UNLABELED}', *geo,
            'train_dataloader.batch_size=4', 'train_dataloader.sampler.batch_size=4',
            'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False']


def _ap(out: str) -> float:
    found = AP.findall(out)
    assert found, out[-3000:]
    return float(found[-1])


@pytest.fixture(scope='module')
def sapiens_stage0(checkout, sapiens_env, tmp_path_factory):
    work = tmp_path_factory.mktemp('sapiens_stage0')
    out = run(['tools/train.py', f'{CFG}/stage0_supervised_cpu.py', '--work-dir', str(work),
               *_train_options(4), 'train_dataloader.batch_size=4',
               f'train_dataloader.dataset.indices={LABELED}'], checkout, sapiens_env).output
    assert 'Iter(train) [4/4]' in out, out[-3000:]
    return work / 'iter_4.pth'


def test_stage0_trains_and_tests_through_sapiens_tools(sapiens_stage0, checkout, sapiens_env):
    out = run(['tools/test.py', f'{CFG}/stage0_supervised_cpu.py', str(sapiens_stage0),
               '--cfg-options', f'test_dataloader.dataset.indices={VAL}'],
              checkout, sapiens_env).output
    assert 0.0 <= _ap(out) <= 1.0
    assert 'missing keys' not in out and 'unexpected key' not in out, out[-3000:]


def test_sapiens_stage0_checkpoint_tests_strictly_on_the_stock_stack(sapiens_stage0):
    out = run(['tools/test.py', f'{CFG}/stage0_supervised_cpu.py', str(sapiens_stage0),
               '--cfg-options', f'test_dataloader.dataset.indices={VAL}'], REPO_ROOT).output
    assert 0.0 <= _ap(out) <= 1.0


def test_stock_stage0_checkpoint_loads_strictly_under_sapiens(stock_stage0, checkout,
                                                              sapiens_env, tmp_path):
    """Sapiens' test.py loads non-strictly (mmengine's default); the Sapiens model classes of
    the configs refuse a checkpoint that does not fit, even there."""
    out = run(['tools/test.py', f'{CFG}/stage0_supervised_cpu.py', str(stock_stage0),
               '--cfg-options', f'test_dataloader.dataset.indices={VAL}'],
              checkout, sapiens_env).output
    assert 0.0 <= _ap(out) <= 1.0
    broken = torch.load(stock_stage0, map_location='cpu', weights_only=False)
    del broken['state_dict']['head.final_layer.weight']
    torch.save(broken, tmp_path / 'broken.pth')
    proc = run(['tools/test.py', f'{CFG}/stage0_supervised_cpu.py', str(tmp_path / 'broken.pth')],
               checkout, sapiens_env, ok=False)
    assert proc.returncode != 0
    assert 'CheckpointMismatchError' in proc.output and 'head.final_layer.weight' in proc.output


@pytest.mark.parametrize('method', ['stage1_ssl_baseline_cpu', 'stage1_ssl_full_cpu'])
def test_stage1_trains_and_tests_through_sapiens_tools(method, checkout, sapiens_env,
                                                       stock_stage0, prior_ckpt, cache_root,
                                                       tmp_path):
    """Stage1 starts from the stock stack's Stage0 checkpoint (init_from is strict), trains a
    few iterations under Sapiens, and its checkpoint evaluates under both stacks without the
    training-only inputs (the ddp_prior file is not given to test)."""
    cfg = f'{CFG}/{method}.py'
    full = method == 'stage1_ssl_full_cpu'
    out = run(['tools/train.py', cfg, '--work-dir', str(tmp_path), *_train_options(3),
               *_stage1_options(stock_stage0, prior_ckpt, cache_root if full else None)],
              checkout, sapiens_env).output
    losses = re.findall(r'Iter\(train\) \[3/3\].*', out)
    assert losses, out[-3000:]
    assert 'num_use_teacherA' in losses[0] and 'nan' not in losses[0].lower(), losses[0]
    if full:
        for term in ('loss_dev', 'loss_geo_depth', 'loss_geo_normal', 'num_use_teacherB'):
            assert term in losses[0], losses[0]
    ckpt = tmp_path / 'iter_3.pth'
    test = ['tools/test.py', cfg, str(ckpt), '--cfg-options',
            f'test_dataloader.dataset.indices={VAL}']
    assert 0.0 <= _ap(run(test, checkout, sapiens_env).output) <= 1.0
    assert 0.0 <= _ap(run(test, REPO_ROOT).output) <= 1.0
