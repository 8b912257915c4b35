"""Constants and helpers of the full-Stage1 tests (imported by name from this directory)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CFG_DIR = 'configs/nk_sapiens/infant'
STAGE0_CPU = f'{CFG_DIR}/stage0_supervised_cpu.py'
GEO_CACHE_CPU = f'{CFG_DIR}/_base_/geo_cache_cpu.py'
ABLATIONS_CPU = {
    'baseline': f'{CFG_DIR}/stage1_ssl_baseline_cpu.py',
    'ddp': f'{CFG_DIR}/stage1_ablation_ddp_cpu.py',
    'cmgc': f'{CFG_DIR}/stage1_ablation_cmgc_cpu.py',
    'ddp_cmgc': f'{CFG_DIR}/stage1_ablation_ddp_cmgc_cpu.py',
    'full': f'{CFG_DIR}/stage1_ssl_full_cpu.py',
    'ddp_gate': f'{CFG_DIR}/stage1_ablation_ddp_gate_cpu.py',
}
ABLATIONS_FULL = {k: v.replace('_cpu.py', '.py') for k, v in ABLATIONS_CPU.items()}
LABELED_INDICES = list(range(0, 160, 16))  # 10 labeled train-part images
UNLABELED_INDICES = list(range(0, 300, 30))  # 10 unlabeled instances (x K seeded views)
# Position of LoadGeoCacheMaps in the CMGC configs' unlabeled pipeline.
GEO_LOAD_STEP = 3


def run_cli(args: list[str], cwd: Path) -> str:
    """Run ``python ARGS`` in ``cwd`` with one OpenMP thread; fail with the output tail."""
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True,
                          env=env)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    return out


def subset_options(cache_cfg: dict | None, cmgc: bool) -> dict:
    """Config overrides: the labeled/unlabeled subsets (and the cache of that subset)."""
    opts = {'train_dataloader.dataset.datasets.0.indices': LABELED_INDICES,
            'train_dataloader.dataset.datasets.1.dataset.indices': UNLABELED_INDICES}
    if cmgc:
        step = f'train_dataloader.dataset.datasets.1.dataset.pipeline.{GEO_LOAD_STEP}'
        opts[f'{step}.indices'] = UNLABELED_INDICES
        if cache_cfg is not None:  # geo_cache and its copies (GeoCacheCopiesHook)
            for key in ('geo_cache', 'model.geo_cache', f'{step}.cache'):
                opts[f'{key}.root'] = cache_cfg['root']
    return opts
