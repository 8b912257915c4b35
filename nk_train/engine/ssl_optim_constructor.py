"""Sapiens layer-decay AdamW for the Stage1 student.

mmpose's ``LayerDecayOptimWrapperConstructor`` gives each ViT block its own learning rate
by reading ``backbone.layers.N`` from parameter names. Inside the Stage1 wrapper those names
become ``student.backbone.layers.N`` and every block would silently get the head's rate.
This constructor hands it the student alone, so names, groups and rates are exactly those of
Stage0, and the EMA teacher's parameters never reach the optimizer. A trainable parameter
outside the student would not be optimised at all, so it is refused.
"""
from __future__ import annotations

from mmpose.engine.optim_wrappers.layer_decay_optim_wrapper import \
    LayerDecayOptimWrapperConstructor
from mmpose.registry import OPTIM_WRAPPER_CONSTRUCTORS
from torch import nn


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class StudentLayerDecayOptimWrapperConstructor(LayerDecayOptimWrapperConstructor):
    """Layer-decay parameter groups built from ``model.student`` (same config keys)."""

    def add_params(self, params: list, module: nn.Module, prefix: str = '',
                   lr=None) -> None:
        student = getattr(module, 'student', None)
        if not isinstance(student, nn.Module):
            raise TypeError('StudentLayerDecayOptimWrapperConstructor needs a model with a '
                            f'`student` sub-module, got {type(module).__name__}')
        student_ids = {id(p) for p in student.parameters()}
        stray = [n for n, p in module.named_parameters()
                 if p.requires_grad and id(p) not in student_ids]
        if stray:
            raise ValueError(f'trainable parameters outside the student would not be optimised: '
                             f'{stray[:10]} (freeze them or extend this constructor)')
        super().add_params(params, student, prefix, lr)
