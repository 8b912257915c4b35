"""Let mmpose's numpy-side helpers accept bfloat16 tensors (for ``--amp``).

Under bf16 autocast the heads return bfloat16 heatmaps, and mmpose converts them with
``mmpose.utils.tensor_utils.to_numpy`` (training accuracy, decoding), but numpy has no
bfloat16: ``TypeError: Got unsupported ScalarType BFloat16``. We wrap ``to_numpy`` so a
bfloat16 tensor is upcast to float32 first, and rebind it in every mmpose module that
imported it by name. Nothing else changes.
"""
from __future__ import annotations

import functools
import sys

import torch


def patch_to_numpy_for_bf16() -> int:
    """Install the upcasting ``to_numpy``; return how many module bindings were replaced."""
    import mmpose.models  # noqa: F401  (import the heads so their bindings exist)
    from mmpose.utils import tensor_utils

    original = tensor_utils.to_numpy
    if getattr(original, '_nk_bf16_upcast', False):
        return 0

    @functools.wraps(original)
    def to_numpy(x, *args, **kwargs):
        if isinstance(x, torch.Tensor) and x.dtype == torch.bfloat16:
            x = x.float()
        elif isinstance(x, (list, tuple)) and any(
                isinstance(t, torch.Tensor) and t.dtype == torch.bfloat16 for t in x):
            x = type(x)(t.float() if isinstance(t, torch.Tensor) else t for t in x)
        return original(x, *args, **kwargs)

    to_numpy._nk_bf16_upcast = True
    replaced = 0
    for name, module in list(sys.modules.items()):
        if name.startswith('mmpose') and getattr(module, 'to_numpy', None) is original:
            module.to_numpy = to_numpy
            replaced += 1
    return replaced
