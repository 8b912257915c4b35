"""Stage1 fixtures: a short real Stage0 run, whose checkpoint initialises Stage1."""
from __future__ import annotations

from pathlib import Path

import pytest
from stage1_helpers import LABELED_INDICES, STAGE0_CPU, run_cli


@pytest.fixture(scope='session')
def stage0_checkpoint(repo_root, syrip_root, tmp_path_factory) -> Path:
    """A Stage0 CPU checkpoint from 10 real training iterations (what Stage1 starts from)."""
    work = tmp_path_factory.mktemp('stage1_stage0')
    run_cli(['tools/train.py', STAGE0_CPU, '--work-dir', str(work), '--no-validate',
             '--cfg-options', 'train_cfg.max_iters=10', 'default_hooks.checkpoint.interval=10',
             f'train_dataloader.dataset.indices={LABELED_INDICES}'], repo_root)
    ckpt = work / 'iter_10.pth'
    assert ckpt.is_file()
    return ckpt
