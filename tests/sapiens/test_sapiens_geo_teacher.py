"""Sapiens-Lite depth/normal files as the geometric teacher: surrogates made by Sapiens' own
model classes and exporters (``build_geo_surrogates.py``: TorchScript float32 and torch.export
bf16) run through precompute, the full cache check and a Stage1 full step with finite,
non-trivial CMGC losses, on the stock stack. The surrogates have random weights, so their
depth has no -1 background: the foreground rule is 'none' here, and the segmentation-file
path of the full-size config is not exercised by these files (tests/cache covers it with
TorchScript files).

The teacher is set where a user sets it, in ``_base_/geo_cache_cpu_overrides.py`` (of a copy
of the configs), so the cache, the Stage1 model and its pipeline read the same dict."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from sapiens_env import LABELED, REPO_ROOT, UNLABELED, fork_env, require_sapiens, run

STAND_IN = "teacher=dict(_delete_=True, kind='stand_in', seed=0, width=16, num_layers=3,"
DEPTH_FOREGROUND = "foreground=dict(source='depth', below=0.0)"


@pytest.fixture(scope='module')
def lite_files(tmp_path_factory) -> Path:
    root = require_sapiens()
    out = tmp_path_factory.mktemp('sapiens_lite')
    run([str(Path(__file__).with_name('build_geo_surrogates.py')), str(root), str(out)],
        REPO_ROOT, env=fork_env(root, 'seg'))
    return out


def _configs(tmp: Path, kind: str, lite: Path, cache: Path) -> Path:
    """A copy of configs/ whose CPU geometric teacher is the Sapiens-Lite surrogate pair."""
    configs = tmp / 'configs'
    shutil.copytree(REPO_ROOT / 'configs', configs)
    suffix = 'torchscript' if kind == 'torchscript' else 'bfloat16'
    overrides = configs / 'nk_sapiens/infant/_base_/geo_cache_cpu_overrides.py'
    text = overrides.read_text()
    assert STAND_IN in text
    text = re.sub(r"root='cache/geo_cpu'", f'root={str(cache)!r}', text)
    teacher = (f"teacher=dict(_delete_=True, kind={kind!r}, "
               f"depth={str(lite / f'depth_{suffix}.pt2')!r}, "
               f"normal={str(lite / f'normal_{suffix}.pt2')!r},\n")
    # Surrogates with random weights put no -1 background anywhere (Sapiens' trained models
    # do): every pixel of the crop counts as foreground, so the CMGC terms see data.
    assert DEPTH_FOREGROUND in text
    overrides.write_text(text.replace(STAND_IN, teacher, 1).replace(
        ' seed=0, width=16, num_layers=3,', '').replace(DEPTH_FOREGROUND,
                                                       "foreground=dict(source='none')"))
    return configs / 'nk_sapiens/infant'


@pytest.mark.parametrize('kind', ['torchscript', 'export'])
def test_sapiens_lite_pair_runs_precompute_check_and_stage1(kind, lite_files, stock_stage0,
                                                            prior_ckpt, tmp_path):
    cfg_dir = _configs(tmp_path, kind, lite_files, tmp_path / 'geo')
    indices = [*map(str, UNLABELED)]
    geo_cfg = str(cfg_dir / '_base_/geo_cache_cpu.py')
    run(['precompute/geo_cache.py', '--split', 'unlabeled', '--config', geo_cfg, '--workers', '1',
         '--no-progress', '--indices', *indices], REPO_ROOT)
    check = run(['tools/check_cache.py', '--split', 'unlabeled', '--config', geo_cfg, '--full',
                 '--indices', *indices], REPO_ROOT).output
    assert 'OK (full check' in check, check[-2000:]
    manifest = (tmp_path / 'geo/unlabeled/manifest.json').read_text()
    assert f'"kind": "{kind}"' in manifest
    step = 'train_dataloader.dataset.datasets.1.dataset'
    out = run(['tools/train.py', str(cfg_dir / 'stage1_ssl_full_cpu.py'), '--work-dir',
               str(tmp_path / 'work'), '--no-validate', '--cfg-options',
               'train_cfg.max_iters=2', 'default_hooks.logger.interval=1',
               f'model.init_from={stock_stage0}', f'model.ddp_prior.checkpoint={prior_ckpt}',
               f'train_dataloader.dataset.datasets.0.indices={LABELED}',
               f'{step}.indices={UNLABELED}', f'{step}.pipeline.3.indices={UNLABELED}',
               'train_dataloader.batch_size=8', 'train_dataloader.sampler.batch_size=8',
               'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False'],
              REPO_ROOT).output
    row = re.findall(r'Iter\(train\) \[2/2\].*', out)
    assert row, out[-3000:]
    for term in ('loss_geo_depth', 'loss_geo_normal'):
        value = float(re.search(term + r': (-?\d+\.\d+)', row[0]).group(1))
        assert 0.0 < value < 1e3, (term, value, row[0])
