"""Build small surrogates of Sapiens-Lite depth and normal files with Sapiens' own code.

Run with Sapiens' forks (``seg`` included) first on ``PYTHONPATH``. The models are Sapiens'
render_people depth and normal configs (``DepthEstimator`` + ``VitDepthHead`` /
``VitNormalHead``) at CPU width and the CPU cache's teacher input (256 x 192), with seeded
random weights (no Sapiens weights can be downloaded here). They are exported

* to TorchScript float32 by Sapiens' own ``seg/tools/deployment/pytorch2torchscript.py``
  (``*_torchscript.pt2``), and
* to ``torch.export`` bf16 by the steps of Sapiens' ``torch_optimization.py`` (the model cast
  to bf16, exported with a dynamic batch, saved with ``torch.export.save``; its CUDA
  benchmarking and ``torch.compile`` steps cannot run here) (``*_bfloat16.pt2``).

    python build_geo_surrogates.py SAPIENS_ROOT OUT_DIR
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

CONFIGS = dict(
    depth='seg/configs/sapiens_depth/render_people/sapiens_0.3b_render_people-1024x768.py',
    normal='seg/configs/sapiens_normal/normal_render_people/'
           'sapiens_0.3b_normal_render_people-1024x768.py')
H, W = 256, 192  # the CPU cache's teacher input (h, w)
WIDTH = 64  # embedding width of the surrogate ViT


def child_config(root: Path, task: str, out: Path) -> Path:
    """Sapiens' config with the sizes shrunk (everything else as Sapiens has it)."""
    path = out / f'sapiens_{task}_surrogate.py'
    path.write_text(
        f'_base_ = [{str(root / CONFIGS[task])!r}]\n'
        f'image_size = ({W}, {H})\n'
        f'data_preprocessor = dict(size=({H}, {W}))\n'
        'model = dict(\n'
        f'    data_preprocessor=dict(size=({H}, {W})),\n'
        f'    backbone=dict(arch=dict(_delete_=True, embed_dims={WIDTH}, num_layers=2,\n'
        f'                            num_heads=2,\n'
        f'                            feedforward_channels={4 * WIDTH}),\n'
        f'                  img_size=({H}, {W}), init_cfg=None),\n'
        f'    decode_head=dict(in_channels={WIDTH}, channels=16, norm_cfg=dict(type="BN"),\n'
        '                     deconv_out_channels=' +
        ('(16, 16, 16, 16)' if task == 'depth' else '(16, 16, 16)') + ',\n'
        '                     conv_out_channels=' +
        ('(16, 16)' if task == 'depth' else '(16, 16, 16)') + '))\n')
    return path


def main(root: Path, out: Path) -> None:
    from mmengine.config import Config
    from mmengine.model import revert_sync_batchnorm
    from mmengine.runner.checkpoint import save_checkpoint
    from mmseg.models import build_segmentor
    from mmseg.utils import register_all_modules

    assert str(root) in __import__('mmseg').__file__, 'run with the Sapiens forks'
    register_all_modules()
    out.mkdir(parents=True, exist_ok=True)
    for seed, task in enumerate(CONFIGS):
        config = child_config(root, task, out)
        cfg = Config.fromfile(str(config))
        model = build_segmentor(cfg.model).eval()
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
        ckpt = out / f'{task}.pth'
        save_checkpoint(dict(state_dict=model.state_dict()), str(ckpt))
        subprocess.run([sys.executable, str(root / 'seg/tools/deployment/pytorch2torchscript.py'),
                        str(config), '--checkpoint', str(ckpt), '--shape', str(H), str(W),
                        '--output-file', str(out / f'{task}_torchscript.pt2')], check=True)
        model = revert_sync_batchnorm(model).to(torch.bfloat16)
        example = torch.zeros(2, 3, H, W, dtype=torch.bfloat16)
        batch = torch.export.Dim('batch', min=1, max=32)
        with torch.no_grad():
            program = torch.export.export(model, args=(example,),
                                          dynamic_shapes={'inputs': {0: batch}})
        torch.export.save(program, str(out / f'{task}_bfloat16.pt2'))
    print(f'surrogate Sapiens-Lite depth/normal files written to {out}')


if __name__ == '__main__':
    main(Path(sys.argv[1]), Path(sys.argv[2]))
