"""Distributed (torch.distributed) start-up that also works on CPU-only machines.

mmengine 0.10.7's ``launcher='pytorch'`` calls ``torch.cuda.set_device`` and its DDP wrapper
passes ``device_ids=[LOCAL_RANK]``; both fail without CUDA. On such machines we initialise
the process group with gloo ourselves (the Runner then skips its own init) and wrap the
model for CPU. With CUDA nothing is changed.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
from mmengine.config import Config


def prepare_distributed(cfg: Config) -> None:
    """Make ``cfg`` launchable: gloo process group + CPU DDP wrapper when CUDA is absent."""
    if cfg.get('launcher', 'none') == 'none' or torch.cuda.is_available():
        return
    if not dist.is_initialized():
        dist.init_process_group(backend='gloo')
    cfg.env_cfg.setdefault('dist_cfg', {})['backend'] = 'gloo'
    wrapper = dict(cfg.get('model_wrapper_cfg') or {})
    wrapper.setdefault('type', 'MMDistributedDataParallel')
    wrapper.setdefault('broadcast_buffers', False)
    wrapper['device_ids'] = None
    cfg.model_wrapper_cfg = wrapper
