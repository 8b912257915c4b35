"""The Sapiens pose model's backbone and head on either OpenMMLab stack.

Sapiens' forks and the stock PyPI releases build different state dicts from the same config,
so checkpoints did not cross: the fork's ``HeatmapHead`` uses InstanceNorm + SiLU blocks where
stock mmpose 1.3.2 uses BatchNorm + ReLU (20 more keys), and stock mmpretrain cannot load
Sapiens' MAE pretrain files (a cls token in ``pos_embed``). The configs therefore name these two
thin subclasses, which have Sapiens' layout on both stacks:

* ``SapiensVisionTransformer``: mmpretrain's ``VisionTransformer`` (the fork's inside a Sapiens
  checkout) that loads every Sapiens file whole: the pretrain's cls token is dropped from
  ``pos_embed`` (and the grid resized, as the fork does), weights nested under ``backbone.``
  (a non-``_clean`` pretrain file) are lifted and the MAE decoder dropped, and anything that
  would leave a backbone weight unloaded raises ``CheckpointMismatchError``.
* ``SapiensHeatmapHead``: mmpose's ``HeatmapHead`` with Sapiens' InstanceNorm + SiLU blocks
  (``nn.InstanceNorm2d`` without affine parameters, so no norm keys), refusing incomplete
  checkpoints the same way.

Both keep mmpose's ``TopdownPoseEstimator`` + ``HeatmapHead`` state-dict layout: a Sapiens COCO
pose checkpoint loads strictly into a model of these classes and back.
"""
from __future__ import annotations

import math
from typing import Any

from mmengine.logging import print_log
from mmpose.models.heads import HeatmapHead
from mmpose.registry import MODELS
from mmpretrain.models.backbones.vision_transformer import VisionTransformer
from torch import nn

from .checkpoint_keys import CheckpointMismatchError, require_complete

PRETRAIN_PREFIX = 'backbone.'  # where a non-clean Sapiens pretrain file keeps the ViT


def _lift_nested_backbone(module: nn.Module, state_dict: dict, prefix: str) -> None:
    """``prefix + 'backbone.' + k`` -> ``prefix + k`` when the module's keys are only found
    nested (a Sapiens MAE file before ``pretrain_clean_checkpoints.py``); the rest of such a
    file under ``prefix`` (the MAE decoder) has no place in a pose model and is dropped."""
    own = list(module.state_dict())
    nested = prefix + PRETRAIN_PREFIX
    if not own or any(prefix + k in state_dict for k in own) or \
            not any(nested + k in state_dict for k in own):
        return
    dropped = set()
    for key in [k for k in state_dict if k.startswith(prefix)]:
        value = state_dict.pop(key)
        if key.startswith(nested):
            state_dict[prefix + key[len(nested):]] = value
        else:
            dropped.add(key[len(prefix):].split('.', 1)[0])
    print_log(f'{type(module).__name__}: checkpoint keys lifted from {nested!r}'
              + (f'; dropped what a pose backbone has no place for: {sorted(dropped)}'
                 if dropped else ''), logger='current')


def _grid_side(tokens: int) -> int | None:
    side = math.isqrt(tokens)
    return side if side * side == tokens else None


@MODELS.register_module()
class SapiensVisionTransformer(VisionTransformer):
    """mmpretrain ``VisionTransformer`` that loads Sapiens checkpoints whole (module docstring).

    Same constructor and state dict as ``mmpretrain.VisionTransformer``; ``arch`` may be a
    Sapiens name (``sapiens_0.3b`` ... ``sapiens_2b``) on either stack.
    """

    def _prepare_pos_embed(self, state_dict: dict, prefix: str, *args: Any,
                           **kwargs: Any) -> None:
        """Load-state-dict pre-hook (registered by the parent under this name)."""
        _lift_nested_backbone(self, state_dict, prefix)
        name = prefix + 'pos_embed'
        if not self.with_cls_token:
            state_dict.pop(prefix + 'cls_token', None)  # the MAE cls token itself
        if name in state_dict and self.pos_embed is not None:
            self._check_pos_embed(state_dict, name)
        super()._prepare_pos_embed(state_dict, prefix, *args, **kwargs)
        require_complete(self, state_dict, prefix, 'Sapiens ViT backbone',
                         hint='A pose checkpoint loads through load_from; a pretrain file '
                              'through model.backbone.init_cfg=dict(type="Pretrained", '
                              'checkpoint=...).')

    def _check_pos_embed(self, state_dict: dict, name: str) -> None:
        """Drop a cls token the model does not have (Sapiens pretrain: 64 x 64 + 1 tokens) and
        refuse what cannot be resized to the model's grid."""
        pos = state_dict[name]
        tokens, width = int(pos.shape[1]), int(pos.shape[-1])
        if width != self.embed_dims:
            raise CheckpointMismatchError(
                f'{name}: the checkpoint has embedding width {width}, this backbone '
                f'{self.embed_dims}: it comes from another architecture (arch setting)')
        model_tokens = int(self.pos_embed.shape[1])
        if tokens == model_tokens:
            return
        if not self.with_cls_token and _grid_side(tokens - 1):
            state_dict[name] = pos[:, 1:]
        elif _grid_side(tokens - self.num_extra_tokens) is None:
            raise CheckpointMismatchError(
                f'{name}: {tokens} tokens form no square grid, so they cannot be resized to '
                f'this backbone\'s {self.patch_resolution} patch grid ({model_tokens} tokens): '
                'the checkpoint was trained at another input size (image_size)')


@MODELS.register_module()
class SapiensHeatmapHead(HeatmapHead):
    """mmpose ``HeatmapHead`` with Sapiens' blocks: conv/deconv, InstanceNorm, SiLU.

    On stock mmpose the BatchNorm + ReLU pairs the parent builds are swapped for
    ``nn.InstanceNorm2d`` (no affine parameters, no running statistics) + ``nn.SiLU``; inside a
    Sapiens checkout the parent already builds those (``use_silu=True``) and nothing changes.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._register_load_state_dict_pre_hook(self._require_complete)

    def _make_conv_layers(self, *args: Any, **kwargs: Any) -> nn.Module:
        return _sapiens_blocks(super()._make_conv_layers(*args, **kwargs))

    def _make_deconv_layers(self, *args: Any, **kwargs: Any) -> nn.Module:
        return _sapiens_blocks(super()._make_deconv_layers(*args, **kwargs))

    def _require_complete(self, state_dict: dict, prefix: str, *args: Any) -> None:
        hint = ('It has no head at all: a pretrain (backbone) file loads through '
                'model.backbone.init_cfg, not load_from.'
                if not any(k.startswith(prefix) for k in state_dict) else
                'A pose checkpoint of another keypoint set or head width does not fit this '
                'head.')
        require_complete(self, state_dict, prefix, 'Sapiens heatmap head', hint=hint)


def _sapiens_blocks(layers: nn.Module) -> nn.Module:
    """BatchNorm2d -> InstanceNorm2d (as Sapiens' head: no affine, no running stats) and
    ReLU -> SiLU in a ``nn.Sequential`` of conv blocks; other modules are kept."""
    if not isinstance(layers, nn.Sequential):
        return layers
    swapped = []
    for layer in layers:
        if isinstance(layer, nn.BatchNorm2d):
            layer = nn.InstanceNorm2d(layer.num_features)
        elif isinstance(layer, nn.ReLU):
            layer = nn.SiLU(inplace=True)
        swapped.append(layer)
    return nn.Sequential(*swapped)
