"""Sapiens' released weights on the project's stock stack, every key used: a COCO pose
checkpoint (Sapiens' head layout) gives exactly the heatmaps the fork computes, an MAE
pretrain file (cls-token ``pos_embed``, clean or under ``backbone.``) initialises the backbone
exactly as the fork does, and anything that would leave weights unloaded is refused.

The weights are surrogates with the real layouts, made by Sapiens' own classes at CPU width
(``build_surrogates.py``)."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner.checkpoint import load_checkpoint
from sapiens_env import CFG, LABELED, REPO_ROOT, fork_env, require_sapiens, run

import nk_train  # noqa: F401  (registers the Sapiens model classes)
from nk_train.compat import CheckpointMismatchError

STAGE0_CPU = REPO_ROOT / f'{CFG}/stage0_supervised_cpu.py'


def _model(backbone_init=None):
    from mmpose.registry import MODELS
    cfg = Config.fromfile(str(STAGE0_CPU))
    init_default_scope('mmpose')
    cfg.model.backbone.init_cfg = backbone_init
    return MODELS.build(cfg.model).eval()


def test_coco_pose_checkpoint_gives_the_forks_heatmaps(surrogates):
    ref = torch.load(surrogates / 'reference.pth', weights_only=True)
    model = _model()
    load_checkpoint(model, str(surrogates / 'coco_pose.pth'), map_location='cpu', strict=True)
    with torch.no_grad():
        heatmaps = model(ref['pose_inputs'], None, mode='tensor')
    assert ref['pose_heatmaps'].abs().max() > 0.1  # a non-trivial output to compare
    torch.testing.assert_close(heatmaps, ref['pose_heatmaps'], rtol=0, atol=1e-5)


@pytest.mark.parametrize('name', ['mae_pretrain_clean.pth', 'mae_pretrain.pth'])
def test_mae_pretrain_initialises_the_backbone_as_the_fork_does(surrogates, name):
    model = _model(dict(type='Pretrained', checkpoint=str(surrogates / name)))
    model.backbone.init_weights()
    got = model.backbone.state_dict()
    want = torch.load(surrogates / 'reference.pth', weights_only=True)['fork_vit_from_clean']
    assert set(got) == set(want)
    for key in want:  # pos_embed too: cls token dropped, 8 x 8 grid resized to 8 x 6
        torch.testing.assert_close(got[key], want[key], rtol=0, atol=0, msg=key)


def test_checkpoint_missing_keys_is_refused_naming_them(surrogates, tmp_path):
    ckpt = torch.load(surrogates / 'coco_pose.pth', weights_only=True)
    del ckpt['state_dict']['backbone.layers.1.ln1.weight']
    del ckpt['state_dict']['head.final_layer.bias']
    torch.save(ckpt, tmp_path / 'partial.pth')
    with pytest.raises(CheckpointMismatchError, match=r'backbone\.layers\.1\.ln1\.weight'):
        load_checkpoint(_model(), str(tmp_path / 'partial.pth'), strict=False)
    del ckpt['state_dict']['backbone.layers.1.ln1.bias']
    ckpt['state_dict']['backbone.layers.1.ln1.weight'] = torch.ones(192)
    ckpt['state_dict']['backbone.layers.1.ln1.bias'] = torch.zeros(192)
    torch.save(ckpt, tmp_path / 'no_head_bias.pth')
    with pytest.raises(CheckpointMismatchError, match=r'head\.final_layer\.bias'):
        load_checkpoint(_model(), str(tmp_path / 'no_head_bias.pth'), strict=False)


def test_pretrain_file_given_as_a_pose_checkpoint_is_refused(surrogates):
    with pytest.raises(CheckpointMismatchError, match='no head at all'):
        load_checkpoint(_model(), str(surrogates / 'mae_pretrain.pth'), strict=False)


def test_pretrain_of_another_width_is_refused(surrogates):
    from mmpose.registry import MODELS
    cfg = Config.fromfile(str(STAGE0_CPU))
    init_default_scope('mmpose')
    cfg.model.backbone.arch.update(embed_dims=96, feedforward_channels=384)
    cfg.model.backbone.init_cfg = dict(type='Pretrained',
                                       checkpoint=str(surrogates / 'mae_pretrain_clean.pth'))
    cfg.model.head.in_channels = 96
    backbone = MODELS.build(cfg.model).backbone
    with pytest.raises(CheckpointMismatchError, match='embedding width 192, this backbone 96'):
        backbone.init_weights()


@pytest.mark.parametrize('start', ['pretrain', 'coco'])
def test_stage0_starts_from_sapiens_weights_through_the_cli(start, surrogates, tmp_path):
    """The two documented Stage0 starts (PROTOCOL.md): the MAE pretrain as backbone init, or
    a Sapiens COCO pose checkpoint as ``load_from``."""
    config, init = STAGE0_CPU, [f'load_from={surrogates / "coco_pose.pth"}']
    if start == 'pretrain':  # the CPU config trains from scratch: a child config adds the init
        config, init = tmp_path / 'stage0_from_pretrain.py', []
        config.write_text(f'_base_ = [{str(STAGE0_CPU)!r}]\n'
                          'model = dict(backbone=dict(init_cfg=dict(_delete_=True, '
                          f'type="Pretrained", checkpoint={str(surrogates / "mae_pretrain.pth")!r})))\n')
    out = run(['tools/train.py', str(config), '--work-dir', str(tmp_path), '--no-validate',
               '--cfg-options', 'train_cfg.max_iters=1', 'default_hooks.checkpoint.interval=1',
               'train_dataloader.batch_size=2', 'train_dataloader.num_workers=0',
               'train_dataloader.persistent_workers=False',
               f'train_dataloader.dataset.indices={LABELED[:2]}', *init], REPO_ROOT).output
    assert 'Iter(train) [1/1]' in out, out[-3000:]
    assert not re.search(r'missing keys|unexpected key|size mismatch', out), out[-3000:]


def test_full_size_model_has_the_layout_of_sapiens_coco_config():
    """Keys and shapes of the full-size Stage0 model on the stock stack equal those of
    Sapiens' own COCO 0.3b pose config built under the forks (meta tensors: no memory)."""
    script = ('import json, sys, torch\n'
              'from mmengine.config import Config\n'
              'from mmengine.registry import init_default_scope\n'
              'from mmpose.registry import MODELS\n'
              'cfg = Config.fromfile(sys.argv[1])\n'
              'init_default_scope("mmpose")\n'
              'cfg.model.backbone.init_cfg = None\n'
              'with torch.device("meta"):\n'
              '    model = MODELS.build(cfg.model)\n'
              'print(json.dumps({k: list(v.shape) for k, v in model.state_dict().items()}))\n')
    root = require_sapiens()
    sapiens_cfg = root / 'pose/configs/sapiens_pose/coco/sapiens_0.3b-210e_coco-1024x768.py'
    fork = subprocess.run([sys.executable, '-c', script, str(sapiens_cfg)], env=fork_env(root),
                          capture_output=True, text=True, cwd=root / 'pose')
    assert fork.returncode == 0, fork.stderr[-3000:]
    ours = subprocess.run([sys.executable, '-c', 'import nk_train\n' + script,
                           str(REPO_ROOT / f'{CFG}/stage0_supervised.py')],
                          capture_output=True, text=True, cwd=REPO_ROOT)
    assert ours.returncode == 0, ours.stderr[-3000:]
    sapiens_keys = json.loads(fork.stdout.strip().splitlines()[-1])
    our_keys = json.loads(ours.stdout.strip().splitlines()[-1])
    assert len(sapiens_keys) == 301
    assert our_keys == sapiens_keys
