"""Build small surrogates of Sapiens' released weights with Sapiens' own classes.

Run with Sapiens' forks first on ``PYTHONPATH`` (``sapiens_env.py``). No Sapiens weights can
be downloaded here, so these files have the real layouts at CPU width (the sizes of
``configs/nk_sapiens/infant/_base_/cpu_model.py``), with seeded random values:

* ``coco_pose.pth``: a Sapiens COCO pose checkpoint, the model of Sapiens'
  ``sapiens_pose/coco/sapiens_0.3b-210e_coco-1024x768.py`` (the fork's ViT + ``HeatmapHead``
  with its InstanceNorm + SiLU blocks), as mmengine saves it (``meta`` + ``state_dict``);
* ``mae_pretrain.pth``: a Sapiens MAE pretrain checkpoint (the fork's ``MAE``: ``MAEViT`` at a
  square input, cls token in ``pos_embed``, decoder under ``neck.``), keys as trained;
* ``mae_pretrain_clean.pth``: the same with only the ViT, ``backbone.`` stripped (what
  ``pretrain_clean_checkpoints.py`` makes);
* ``reference.pth``: what the fork computes from them, to compare the stock stack against:
  the pose model's heatmaps of a real SyRIP crop, and the fork ViT's state dict after
  initialising from the clean pretrain file (cls token dropped, ``pos_embed`` resized).

    python build_surrogates.py SAPIENS_ROOT NK_ROOT OUT_DIR
"""
from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import torch


def randomise(model: torch.nn.Module, seed: int) -> None:
    """Seeded values of a trained-like scale, so outputs depend on every weight (a zero-ish
    fresh head would hide a wrong norm layer)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.05)


def main(sapiens_root: Path, nk_root: Path, out: Path) -> None:
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner.checkpoint import save_checkpoint
    from mmpose.registry import MODELS as POSE_MODELS
    from mmpretrain.registry import MODELS as PRETRAIN_MODELS

    assert str(sapiens_root) in __import__('mmpose').__file__, 'run with the Sapiens forks'
    out.mkdir(parents=True, exist_ok=True)
    cpu = Config.fromfile(str(nk_root / 'configs/nk_sapiens/infant/_base_/cpu_model.py'))
    arch = dict(embed_dims=cpu.cpu_embed_dim, num_layers=cpu.cpu_num_layers, num_heads=3,
                feedforward_channels=cpu.cpu_embed_dim * 4)
    w, h = cpu.cpu_image_size

    # -- the COCO pose model of Sapiens' own config, at CPU width --------------------------
    coco = Config.fromfile(str(
        sapiens_root / 'pose/configs/sapiens_pose/coco/sapiens_0.3b-210e_coco-1024x768.py'))
    init_default_scope('mmpose')
    model_cfg = coco.model
    model_cfg.backbone.update(arch=arch, img_size=(h, w), init_cfg=None)
    model_cfg.head.update(in_channels=cpu.cpu_embed_dim,
                          deconv_out_channels=cpu.cpu_head_channels,
                          conv_out_channels=cpu.cpu_head_channels, decoder=cpu.cpu_codec)
    pose = POSE_MODELS.build(model_cfg).eval()
    randomise(pose, seed=1)
    init_default_scope('mmpretrain')
    save_checkpoint(dict(meta=dict(surrogate='Sapiens COCO pose layout, random weights'),
                         state_dict=pose.state_dict()), str(out / 'coco_pose.pth'))

    img = cv2.imread(str(nk_root / 'data/syrip/images/test0.jpg'))
    crop = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
    batch = pose.data_preprocessor(
        dict(inputs=[torch.from_numpy(crop).permute(2, 0, 1).contiguous()]), training=False)
    with torch.no_grad():
        heatmaps = pose(batch['inputs'], None, mode='tensor')

    # -- the MAE pretrain model, square input with a cls token ----------------------------
    side = h  # pretrain crops are square (1024 x 1024 for the released files)
    mae = PRETRAIN_MODELS.build(dict(
        type='MAE',
        backbone=dict(type='MAEViT', arch=arch, img_size=side, patch_size=16, mask_ratio=0.75),
        neck=dict(type='MAEPretrainDecoder', num_patches=(side // 16) ** 2, patch_size=16,
                  embed_dim=cpu.cpu_embed_dim, decoder_embed_dim=64, decoder_depth=1,
                  decoder_num_heads=2, mlp_ratio=4),
        head=dict(type='MAEPretrainHead', norm_pix=True, patch_size=16,
                  loss=dict(type='PixelReconstructionLoss', criterion='L2'))))
    randomise(mae, seed=2)
    state = mae.state_dict()
    save_checkpoint(dict(meta=dict(surrogate='Sapiens MAE pretrain layout, random weights'),
                         state_dict=state), str(out / 'mae_pretrain.pth'))
    clean = {k[len('backbone.'):]: v for k, v in state.items() if k.startswith('backbone.')}
    save_checkpoint(dict(state_dict=clean), str(out / 'mae_pretrain_clean.pth'))

    # -- how the fork's ViT takes the clean file (cls token dropped, grid resized) --------
    vit_cfg = dict(coco.model.backbone, init_cfg=dict(type='Pretrained',
                                                      checkpoint=str(out / 'mae_pretrain_clean.pth')))
    vit_cfg['type'] = 'VisionTransformer'
    vit = PRETRAIN_MODELS.build(vit_cfg)
    vit.init_weights()
    torch.save(dict(pose_inputs=batch['inputs'], pose_heatmaps=heatmaps,
                    fork_vit_from_clean=vit.state_dict()), out / 'reference.pth')
    print(f'surrogates written to {out}: pose {len(pose.state_dict())} keys, MAE '
          f'{len(state)} keys, pos_embed {tuple(state["backbone.pos_embed"].shape)}')


if __name__ == '__main__':
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
