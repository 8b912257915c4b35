"""--amp: bf16 autocast in the forward pass, on CPU as on GPU; weights stay float32."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import torch
from torch import nn

from nk_train.engine.amp import BF16AutocastOptimWrapper


def test_optim_context_runs_forward_in_bf16():
    model = nn.Linear(4, 4)
    wrapper = BF16AutocastOptimWrapper(torch.optim.SGD(model.parameters(), lr=0.1))
    with wrapper.optim_context(model):
        assert torch.is_autocast_enabled('cpu')
        out = model(torch.randn(2, 4))
    assert out.dtype == torch.bfloat16
    wrapper.update_params(out.float().pow(2).mean())
    assert model.weight.dtype == torch.float32


def test_stage0_trains_with_amp(repo_root, syrip_root, tmp_path):
    cmd = [sys.executable, 'tools/train.py', 'configs/nk_sapiens/infant/stage0_supervised_cpu.py',
           '--amp', '--no-validate', '--work-dir', str(tmp_path), '--cfg-options',
           'train_cfg.max_iters=4', 'default_hooks.logger.interval=1',
           'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
           'train_dataloader.persistent_workers=False',
           'train_dataloader.dataset.indices=[0,1,2,3]']
    proc = subprocess.run(cmd, cwd=repo_root, capture_output=True, text=True)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    rows = [json.loads(x) for x in next(tmp_path.glob('*/vis_data/scalars.json')).read_text()
            .splitlines()]
    assert [r['iter'] for r in rows if 'loss' in r] == [1, 2, 3, 4]
    assert all(math.isfinite(r['loss']) for r in rows if 'loss' in r)
    cfg_dump = next(tmp_path.glob('*/vis_data/config.py')).read_text()
    assert "BF16AutocastOptimWrapper" in cfg_dump
