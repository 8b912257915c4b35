"""Stop training at the first non-finite value; never write a checkpoint with one.

mmengine trains on through ``loss: nan`` and saves checkpoints whose tensors are NaN, and a
NaN keypoint reaching ``F.grid_sample`` on CPU crashes the process without a Python message.
So every loss term is checked where it is made, and what cannot be checked there (mmpose's own
Stage0 estimator) is checked by ``FiniteTrainingHook`` right after the iteration, before any
other hook can save or log it:

* ``NonFiniteLossError`` names the iteration, the non-finite terms (or gradient norm) and the
  batch's samples (annotation id and image), so the bad sample can be found;
* ``before_save_checkpoint`` refuses any checkpoint whose model tensors are not all finite.
"""
from __future__ import annotations

import math
from os import path as osp
from typing import Any, Mapping, Optional

import torch
from mmengine.hooks import Hook
from mmpose.registry import HOOKS

SHOWN_SAMPLES = 16


class NonFiniteLossError(FloatingPointError):
    """A loss term or a model tensor is NaN or infinite."""


def _as_float(value: Any) -> float | None:
    if isinstance(value, torch.Tensor):
        return float(value.detach().float().mean()) if value.numel() else None
    if isinstance(value, (int, float)):
        return float(value)
    return None


def non_finite_terms(values: Mapping[str, Any]) -> dict[str, float]:
    """The entries of a loss / log dict whose (mean) value is NaN or infinite."""
    found = {}
    for name, value in values.items():
        v = _as_float(value)
        if v is not None and not math.isfinite(v):
            found[name] = v
    return found


def describe_samples(data_samples: Any) -> str:
    """``id 12 (train00012.jpg), ...`` of a batch's samples: a list of data samples or, for
    Stage1 batches, a dict of such lists per branch (unlabeled views named once)."""
    if isinstance(data_samples, Mapping):
        groups = [(b, s) for b, s in data_samples.items() if not b.startswith('strong_')]
        return '; '.join(f'{b}: {describe_samples(s)}' for b, s in groups)
    names = []
    for sample in data_samples or []:
        meta = getattr(sample, 'metainfo', {})
        ident = meta.get('nk_sample_id', meta.get('id'))
        view = f' view {meta["geo_seed_k"]}' if 'geo_seed_k' in meta else ''
        names.append(f'id {ident}{view} ({osp.basename(str(meta.get("img_path", "?")))})')
    more = f', ... ({len(names)} in all)' if len(names) > SHOWN_SAMPLES else ''
    return ', '.join(names[:SHOWN_SAMPLES]) + more


def raise_if_non_finite(values: Mapping[str, Any], where: str, data_samples: Any = None
                        ) -> None:
    bad = non_finite_terms(values)
    if bad:
        terms = ', '.join(f'{k}={v}' for k, v in bad.items())
        raise NonFiniteLossError(
            f'{where}: non-finite {terms}. Batch samples: {describe_samples(data_samples)}. '
            'Training stopped; no checkpoint was written from this state (lower the learning '
            'rate, or check these samples with tools/check_dataset.py).')


@HOOKS.register_module()
class FiniteTrainingHook(Hook):
    """Raise ``NonFiniteLossError`` after an iteration with a non-finite loss term (before
    logging or checkpointing run), and before saving a checkpoint with non-finite weights."""

    priority = 'VERY_HIGH'

    def after_train_iter(self, runner, batch_idx: int, data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        values = dict(outputs or {})
        grad_norm = runner.message_hub.get_scalar('train/grad_norm') \
            if 'train/grad_norm' in runner.message_hub.log_scalars else None
        if grad_norm is not None:  # logged by the optimiser wrapper when it clips gradients
            values['grad_norm'] = grad_norm.current()
        raise_if_non_finite(values, f'iteration {runner.iter + 1}',
                            (data_batch or {}).get('data_samples'))

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        bad = [k for k, v in checkpoint.get('state_dict', {}).items()
               if isinstance(v, torch.Tensor) and v.is_floating_point()
               and not bool(torch.isfinite(v).all())]
        if bad:
            raise NonFiniteLossError(
                f'iteration {runner.iter}: refusing to save a checkpoint with non-finite '
                f'weights ({len(bad)} tensors, first: {bad[:5]}); training stopped')
