"""tools/train_ddp_prior.py end to end on the real labeled file (a few steps)."""
from __future__ import annotations

import hashlib
import importlib.util

import torch

from nk_train.ddp_prior import DDPPrior


def _load_tool(repo_root):
    spec = importlib.util.spec_from_file_location('train_ddp_prior',
                                                  repo_root / 'tools' / 'train_ddp_prior.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cli_writes_weights_only_checkpoint(repo_root, tmp_path, skeleton):
    tool = _load_tool(repo_root)
    ann = 'data/syrip/annotations/train_labeled.json'
    out = tool.main(['--ann', ann, '--out', str(tmp_path / 'p.pth'), '--steps', '5',
                     '--batch-size', '16', '--width', '32', '--depth', '1', '--no-progress'])
    ckpt = torch.load(out, map_location='cpu', weights_only=True)
    expected_sha = hashlib.sha256((repo_root / ann).read_bytes()).hexdigest()
    assert ckpt['training']['annotation_sha256'] == expected_sha
    assert ckpt['training']['annotation_file'] == ann
    assert ckpt['training']['steps'] == 5 and ckpt['training']['num_poses'] == 200
    assert ckpt['keypoint_names'] == list(skeleton.keypoint_names)
    assert ckpt['flip_indices'] == list(skeleton.flip_indices)
    assert ckpt['denoiser']['width'] == 32 and ckpt['schedule']['kind'] == 'cosine'
    assert ckpt['normalization']['method'] == 'visible_mean_rms'
    prior = DDPPrior.from_checkpoint(out)
    assert prior.num_keypoints == skeleton.num_keypoints
