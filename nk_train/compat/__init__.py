"""Compatibility shims that let the configs run on stock PyPI OpenMMLab releases
and inside a Sapiens checkout (its bundled forks) alike."""
from .bf16_numpy import patch_to_numpy_for_bf16
from .checkpoint_keys import CheckpointMismatchError, require_complete
from .safe_checkpoint import (MMENGINE_CHECKPOINT_GLOBALS, allow_mmengine_checkpoints,
                              checkpoint_weights_sha256)
from .sapiens_arch import SAPIENS_ARCHS, register_sapiens_archs
from .sapiens_models import SapiensHeatmapHead, SapiensVisionTransformer

register_sapiens_archs()
allow_mmengine_checkpoints()
patch_to_numpy_for_bf16()

__all__ = [
    'SAPIENS_ARCHS', 'register_sapiens_archs', 'MMENGINE_CHECKPOINT_GLOBALS',
    'allow_mmengine_checkpoints', 'checkpoint_weights_sha256', 'patch_to_numpy_for_bf16',
    'CheckpointMismatchError', 'require_complete', 'SapiensHeatmapHead',
    'SapiensVisionTransformer'
]
