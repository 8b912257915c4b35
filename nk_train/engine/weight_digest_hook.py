"""Fingerprints of the model's weights per rank, to prove distributed replicas agree.

After training each rank writes ``<work_dir>/weight_digest_rank<R>.json`` with SHA-256
digests of the parameters and of the persistent buffers of each requested sub-module (e.g.
the EMA teacher and the student). Equal digests over ranks mean bitwise-identical weights;
a desynchronised teacher (an EMA fed rank-local buffers, say) shows up as a mismatch.
Parameters and buffers are separate because, without ``SyncBuffersHook``, the student's
BatchNorm statistics legitimately differ between ranks while its parameters must not.
"""
from __future__ import annotations

import json
import os.path as osp
from typing import Sequence

import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmpose.registry import HOOKS

from ..utils import tensors_digest
from .ema_hook import persistent_buffers


@HOOKS.register_module()
class WeightDigestHook(Hook):
    """Write per-rank digests of ``modules`` (attribute names, '' = whole model) after train."""

    priority = 'LOWEST'

    def __init__(self, modules: Sequence[str] = ('teacher', 'student')) -> None:
        self.modules = list(modules)

    def after_train(self, runner) -> None:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        digests = {}
        for name in self.modules:
            sub = model if name == '' else getattr(model, name, None)
            if not isinstance(sub, torch.nn.Module):
                raise AttributeError(f'WeightDigestHook: the model has no sub-module {name!r}')
            digests[name or 'model'] = dict(parameters=tensors_digest(sub.named_parameters()),
                                            buffers=tensors_digest(persistent_buffers(sub)))
        path = osp.join(runner.work_dir, f'weight_digest_rank{get_rank()}.json')
        with open(path, 'w') as f:
            json.dump(dict(iter=int(runner.iter), digests=digests), f, indent=1)

