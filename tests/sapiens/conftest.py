"""Session fixtures of the Sapiens-checkout tests: the checkout copy, surrogate Sapiens
weights built by Sapiens' classes, and the small real inputs Stage1 needs (a Stage0 checkpoint
from the stock stack, a tiny ddp_prior, the stand-in geometric cache of an unlabeled subset)."""
from __future__ import annotations

from pathlib import Path

import pytest
from sapiens_env import (CFG, LABELED, REPO_ROOT, UNLABELED, fork_env, make_checkout,
                         require_sapiens, run)


@pytest.fixture(scope='session')
def checkout(tmp_path_factory, syrip_root) -> Path:
    """``pose/`` of a temporary Sapiens checkout with the NK-Sapiens configs linked in."""
    return make_checkout(tmp_path_factory.mktemp('sapiens') / 'sapiens')


@pytest.fixture(scope='session')
def sapiens_env(checkout) -> dict:
    return fork_env(checkout.parent)


@pytest.fixture(scope='session')
def surrogates(tmp_path_factory, syrip_root) -> Path:
    """Sapiens-layout weights made by Sapiens' own classes (``build_surrogates.py``)."""
    root = require_sapiens()
    out = tmp_path_factory.mktemp('surrogates')
    run([str(Path(__file__).with_name('build_surrogates.py')), str(root), str(REPO_ROOT),
         str(out)], REPO_ROOT, env=fork_env(root))
    return out


@pytest.fixture(scope='session')
def stock_stage0(tmp_path_factory, syrip_root) -> Path:
    """A Stage0 CPU checkpoint trained on the stock stack (this repo's tools/train.py)."""
    work = tmp_path_factory.mktemp('stock_stage0')
    run(['tools/train.py', f'{CFG}/stage0_supervised_cpu.py', '--work-dir', str(work),
         '--no-validate', '--cfg-options', 'train_cfg.max_iters=4',
         'default_hooks.checkpoint.interval=4', 'train_dataloader.batch_size=4',
         f'train_dataloader.dataset.indices={LABELED}'], REPO_ROOT)
    return work / 'iter_4.pth'


@pytest.fixture(scope='session')
def prior_ckpt(tmp_path_factory, syrip_root) -> Path:
    out = tmp_path_factory.mktemp('prior') / 'ddp_prior.pth'
    run(['tools/train_ddp_prior.py', '--out', str(out), '--steps', '20', '--batch-size', '32',
         '--width', '32', '--depth', '1', '--threads', '1', '--no-progress'], REPO_ROOT)
    return out


@pytest.fixture(scope='session')
def cache_root(tmp_path_factory, syrip_root) -> Path:
    root = tmp_path_factory.mktemp('geo')
    run(['precompute/geo_cache.py', '--split', 'unlabeled', '--config',
         f'{CFG}/_base_/geo_cache_cpu.py', '--workers', '1', '--no-progress', '--indices',
         *map(str, UNLABELED), '--cfg-options', f'geo_cache.root={root}'], REPO_ROOT)
    return root
