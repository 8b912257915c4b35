"""Stage1 full refuses to go on with non-finite values: at an absurd learning rate the step
stops with ``NonFiniteLossError`` (iteration, term, samples) instead of crashing inside
``grid_sample`` on NaN keypoints, and no DataLoader worker is left running."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import psutil
from full_helpers import ABLATIONS_CPU, subset_options


def test_non_finite_stage1_stops_with_a_message(repo_root, stage0_ckpt, prior_ckpt,
                                                geo_cache_root, tmp_path):
    options = {**subset_options(dict(root=str(geo_cache_root)), cmgc=True),
               'model.init_from': stage0_ckpt, 'model.ddp_prior.checkpoint': prior_ckpt,
               'optim_wrapper.optimizer.lr': 1e8,
               'train_cfg.max_iters': 20, 'default_hooks.checkpoint.interval': 1,
               'train_dataloader.batch_size': 4, 'train_dataloader.sampler.batch_size': 4,
               'train_dataloader.num_workers': 1}
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run([sys.executable, 'tools/train.py', ABLATIONS_CPU['full'], '--work-dir',
                           str(tmp_path), '--no-validate', '--cfg-options',
                           *[f'{k}={v}' for k, v in options.items()]],
                          cwd=repo_root, env=env, capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, (proc.returncode, out[-3000:])  # an exception, not a signal
    match = re.search(r'NonFiniteLossError: iteration (\d+): non-finite (.*?)\. Batch samples: '
                      r'(.*?)\. Training stopped', out)
    assert match, out[-3000:]
    assert 'weak: id ' in match.group(3) and 'sup: id ' in match.group(3)
    leftover = [p for p in psutil.process_iter(['cmdline'])
                if str(tmp_path) in ' '.join(p.info['cmdline'] or [])]
    assert not leftover, [p.info['cmdline'] for p in leftover]
