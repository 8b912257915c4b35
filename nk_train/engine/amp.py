"""bf16 mixed precision that runs on CPU as well as GPU.

mmengine's ``AmpOptimWrapper`` refuses to start without CUDA/NPU/MLU. bf16 needs no loss
scaling, so an optimizer wrapper whose ``optim_context`` opens ``torch.autocast`` on the
model's device is all ``--amp`` needs. Float32 islands (CMGC, the ddp_prior, L_dev) disable
autocast themselves.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmpose.registry import OPTIM_WRAPPERS


@OPTIM_WRAPPERS.register_module()
class BF16AutocastOptimWrapper(OptimWrapper):
    """``OptimWrapper`` whose forward context runs under bf16 autocast."""

    @contextmanager
    def optim_context(self, model: torch.nn.Module):
        device = next(model.parameters()).device.type
        with super().optim_context(model), torch.autocast(device_type=device,
                                                         dtype=torch.bfloat16):
            yield


def enable_amp(cfg: Config) -> None:
    """Switch a config's optimizer wrapper to bf16 autocast (what ``--amp`` does)."""
    wrapper_type = cfg.optim_wrapper.get('type', 'OptimWrapper')
    if wrapper_type not in ('OptimWrapper', 'BF16AutocastOptimWrapper'):
        raise ValueError(f'--amp: cannot add autocast to optim_wrapper type {wrapper_type!r}')
    cfg.optim_wrapper.type = 'BF16AutocastOptimWrapper'
