"""Session fixtures of the full-Stage1 tests, all built on small real subsets: a Stage0 CPU
checkpoint (10 iterations), a tiny ddp_prior (few steps) and the CPU geometric cache of the
unlabeled subset."""
from __future__ import annotations

from pathlib import Path

import pytest
from full_helpers import GEO_CACHE_CPU, LABELED_INDICES, STAGE0_CPU, UNLABELED_INDICES, run_cli


@pytest.fixture(scope='session')
def stage0_ckpt(repo_root, syrip_root, tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp('full_stage0')
    run_cli(['tools/train.py', STAGE0_CPU, '--work-dir', str(work), '--no-validate',
             '--cfg-options', 'train_cfg.max_iters=10', 'default_hooks.checkpoint.interval=10',
             'train_dataloader.batch_size=4', 'train_dataloader.num_workers=0',
             'train_dataloader.persistent_workers=False',
             f'train_dataloader.dataset.indices={LABELED_INDICES}'], repo_root)
    return work / 'iter_10.pth'


@pytest.fixture(scope='session')
def prior_ckpt(repo_root, syrip_root, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp('full_prior') / 'ddp_prior.pth'
    run_cli(['tools/train_ddp_prior.py', '--out', str(out), '--steps', '30', '--batch-size', '32',
             '--width', '32', '--depth', '1', '--threads', '1', '--no-progress'], repo_root)
    return out


@pytest.fixture(scope='session')
def geo_cache_root(repo_root, syrip_root, tmp_path_factory) -> Path:
    """CPU cache (stand-in teacher) of the unlabeled subset, outside the repo's cache/."""
    root = tmp_path_factory.mktemp('full_geo_cache')
    run_cli(['precompute/geo_cache.py', '--split', 'unlabeled', '--config', GEO_CACHE_CPU,
             '--workers', '1', '--no-progress', '--indices', *map(str, UNLABELED_INDICES),
             '--cfg-options', f'geo_cache.root={root}'], repo_root)
    return root
