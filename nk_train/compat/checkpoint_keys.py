"""Refuse checkpoints that would leave part of a module unloaded.

mmengine loads ``load_from`` and ``init_cfg=dict(type='Pretrained')`` checkpoints non-strictly:
missing or mis-shaped keys become a warning in the log and the weights stay random. That is how
a non-``_clean`` Sapiens pretrain file (keys under ``backbone.``) or a head of another layout
trains silently from scratch. ``require_complete`` runs inside a module's load-state-dict
pre-hook, so it holds for every caller (mmengine's loaders, Sapiens' tools, ``torch``'s
``load_state_dict``): every parameter and persistent buffer of the module must be in the
checkpoint with its shape, and the checkpoint must hold nothing else under the module's prefix.
"""
from __future__ import annotations

from typing import Iterable, Mapping

from torch import nn

SHOWN = 8  # keys named per kind in an error message


class CheckpointMismatchError(RuntimeError):
    """A checkpoint does not fit the module it is loaded into."""


def _names(keys: Iterable[str]) -> str:
    keys = sorted(keys)
    more = f', ... ({len(keys)} in all)' if len(keys) > SHOWN else ''
    return ', '.join(keys[:SHOWN]) + more


def require_complete(module: nn.Module, state_dict: Mapping, prefix: str, what: str,
                     hint: str = '') -> None:
    """Raise ``CheckpointMismatchError`` unless ``state_dict`` holds exactly the keys (under
    ``prefix``) and shapes of ``module``'s own state dict."""
    expected = {prefix + k: tuple(v.shape) for k, v in module.state_dict().items()}
    given = {k: tuple(v.shape) for k, v in state_dict.items()
             if k.startswith(prefix) and hasattr(v, 'shape')}
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    reshaped = [f'{k}: checkpoint {given[k]}, model {expected[k]}'
                for k in expected if k in given and given[k] != expected[k]]
    if not (missing or unexpected or reshaped):
        return
    problems = []
    if missing:
        problems.append(f'{len(missing)} missing ({_names(missing)})')
    if reshaped:
        problems.append(f'{len(reshaped)} of another shape ({_names(reshaped)})')
    if unexpected:
        problems.append(f'{len(unexpected)} unexpected ({_names(unexpected)})')
    raise CheckpointMismatchError(
        f'the checkpoint being loaded does not fit the {what} (keys under {prefix!r}): '
        + '; '.join(problems) + '. Loading it would leave weights at their random '
        'initialisation, so it is refused (the file is the one the log line above names).'
        + (f' {hint}' if hint else ''))
