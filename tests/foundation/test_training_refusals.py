"""Training refuses what would make it wrong silently: a non-finite loss stops it (naming the
iteration, the term and the batch's samples) before any checkpoint of that state is written,
and a defective annotation file stops it at dataset build, naming the annotation."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

CPU_CFG = 'configs/nk_sapiens/infant/stage0_supervised_cpu.py'
INDICES = list(range(0, 160, 20))  # 8 labeled train-part images


def _train(repo_root: Path, work: Path, *options: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS='1')
    return subprocess.run(
        [sys.executable, 'tools/train.py', CPU_CFG, '--work-dir', str(work), '--no-validate',
         '--cfg-options', 'train_dataloader.batch_size=4', 'train_dataloader.num_workers=0',
         'train_dataloader.persistent_workers=False', 'default_hooks.logger.interval=1',
         *options], cwd=repo_root, env=env, capture_output=True, text=True)


def test_non_finite_loss_stops_stage0_without_a_bad_checkpoint(repo_root, syrip_root, tmp_path):
    proc = _train(repo_root, tmp_path, 'optim_wrapper.optimizer.lr=1e8',
                  'train_cfg.max_iters=30', 'default_hooks.checkpoint.interval=1',
                  f'train_dataloader.dataset.indices={INDICES}')
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    match = re.search(r'NonFiniteLossError: iteration (\d+): non-finite (.*?)\. Batch samples: '
                      r'(.*?)\. Training stopped', out)
    assert match, out[-3000:]
    stopped = int(match.group(1))
    # the first non-finite value is the loss or, one step earlier, the gradient norm
    assert re.search(r'loss|grad_norm', match.group(2))
    assert re.search(r'id \d+ \(train\d+\.jpg\)', match.group(3))
    for ckpt in tmp_path.glob('iter_*.pth'):  # only earlier iterations, all finite
        assert int(ckpt.stem.split('_')[1]) < stopped
        state = torch.load(ckpt, map_location='cpu', weights_only=False)['state_dict']
        assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


def test_defective_annotation_stops_training_at_build(repo_root, syrip_root, tmp_path):
    coco = json.loads((syrip_root / 'annotations/train_labeled.json').read_text())
    bad = coco['annotations'][3]
    bad['keypoints'][4] = 'oops'
    img = next(i for i in coco['images'] if i['id'] == coco['annotations'][5]['image_id'])
    coco['annotations'][5]['bbox'] = [float(img['width']) + 1.0, 0.0, 10.0, 10.0]
    ann = tmp_path / 'labeled.json'
    ann.write_text(json.dumps(coco))
    proc = _train(repo_root, tmp_path / 'work', 'train_cfg.max_iters=1',
                  f'train_dataloader.dataset.ann_file={ann}')
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert 'DatasetDefectError' in out and str(ann) in out, out[-3000:]
    assert f'ann {bad["id"]}: keypoint values must be finite numbers' in out
    assert f'ann {coco["annotations"][5]["id"]}: bbox' in out and 'wholly outside' in out
    assert 'Iter(train)' not in out
