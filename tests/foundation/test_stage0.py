"""Stage0 end to end on real SyRIP data: train (CLI) -> checkpoint -> test (CLI) -> COCO AP."""
from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

CPU_CFG = 'configs/nk_sapiens/infant/stage0_supervised_cpu.py'
FULL_CFG = 'configs/nk_sapiens/infant/stage0_supervised.py'
TRAIN_INDICES = list(range(0, 160, 4))  # 40 labeled train-part images, spread over it
AP_LINE = re.compile(r'coco/AP: (-?\d+\.\d+)')


def _run(args: list[str], cwd: Path) -> str:
    proc = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    return out


@pytest.fixture(scope='module')
def stage0_run(repo_root, syrip_root, tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp('stage0')
    _run(['tools/train.py', CPU_CFG, '--work-dir', str(work), '--no-validate', '--cfg-options',
          'train_cfg.max_iters=50', 'default_hooks.checkpoint.interval=50',
          f'train_dataloader.dataset.indices={TRAIN_INDICES}'], repo_root)
    return work


def test_fifty_iterations_with_finite_loss(stage0_run):
    scalars = sorted(stage0_run.glob('*/vis_data/scalars.json'))
    assert scalars, 'no scalars.json written'
    rows = [json.loads(line) for line in scalars[-1].read_text().splitlines()]
    losses = {r['iter']: r['loss'] for r in rows if 'loss' in r}
    assert max(losses) == 50
    assert all(math.isfinite(v) for v in losses.values()), losses
    assert (stage0_run / 'iter_50.pth').is_file()


def test_checkpoint_evaluates_on_test100(stage0_run, repo_root):
    out = _run(['tools/test.py', CPU_CFG, '--checkpoint', str(stage0_run / 'iter_50.pth'),
                '--work-dir', str(stage0_run / 'test')], repo_root)
    ap = AP_LINE.findall(out)
    assert ap, out[-3000:]
    assert 0.0 <= float(ap[-1]) <= 1.0


def test_bbox_file_path_runs_in_test_mode(stage0_run, repo_root, coco_mini_root):
    out = _run(['tools/test.py', CPU_CFG, str(stage0_run / 'iter_50.pth'),
                '--work-dir', str(stage0_run / 'coco_mini'), '--cfg-options',
                'test_dataloader.dataset.ann_file=coco_mini/test_coco.json',
                'test_dataloader.dataset.bbox_file=data/coco_mini/test_coco_det_AP_H_56.json',
                'test_dataloader.dataset.data_prefix.img=coco_mini/images/',
                'test_evaluator.ann_file=data/coco_mini/test_coco.json'], repo_root)
    assert AP_LINE.findall(out), out[-3000:]


def test_bbox_file_replaces_ground_truth_boxes(repo_root, coco_mini_root):
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmpose.registry import DATASETS
    import nk_train  # noqa: F401

    cfg = Config.fromfile(str(repo_root / CPU_CFG))
    init_default_scope(cfg.default_scope)
    ds_cfg = cfg.test_dataloader.dataset
    ds_cfg.update(data_root=str(coco_mini_root.parent) + '/', ann_file='coco_mini/test_coco.json',
                  bbox_file=str(coco_mini_root / 'test_coco_det_AP_H_56.json'),
                  data_prefix=dict(img='coco_mini/images/'))
    dataset = DATASETS.build(ds_cfg)
    detections = json.loads((coco_mini_root / 'test_coco_det_AP_H_56.json').read_text())
    assert len(dataset) == len(detections)  # one top-down crop per detector box


def test_full_size_config_builds_sapiens_03b(repo_root):
    from mmengine.config import Config
    from mmpose.registry import MODELS
    import nk_train  # noqa: F401

    cfg = Config.fromfile(str(repo_root / FULL_CFG))
    model = MODELS.build(cfg.model)
    backbone = model.backbone
    assert backbone.embed_dims == 1024 and backbone.num_layers == 24
    assert backbone.layers[0].attn.num_heads == 16
    assert backbone.layers[0].ffn.layers[0][0].out_features == 4096
    assert backbone.patch_resolution == (64, 48)  # 1024x768 input, patch 16, padding 2
    assert model.head.out_channels == 17
    n_params = sum(p.numel() for p in backbone.parameters())
    assert 0.29e9 < n_params < 0.32e9, n_params
    assert cfg.model.head.decoder.input_size == [768, 1024]
