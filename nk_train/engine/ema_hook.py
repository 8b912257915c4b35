"""EMA Teacher A: after every optimiser step the teacher moves towards the student.

    teacher <- m * teacher + (1 - m) * student         (m = ``momentum``, e.g. 0.999)

for every parameter and every floating-point persistent buffer (BatchNorm running
statistics in the heatmap head); integer buffers (``num_batches_tracked``) are copied.
The update runs in float32 on the optimiser's master weights (bf16 autocast never changes
the parameters' dtype), on the unwrapped model (``MMDistributedDataParallel.module``).
Under torch.distributed every rank holds the same student parameters after the gradient
all-reduce, so the teachers stay identical; buffers are rank-local statistics, so they are
averaged over ranks first (``sync_buffers``).
"""
from __future__ import annotations

from typing import Iterator, Optional

import torch
import torch.distributed as dist
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmpose.registry import HOOKS
from torch import Tensor, nn


def persistent_buffers(module: nn.Module) -> Iterator[tuple[str, Tensor]]:
    """Named buffers that are part of the state dict (non-persistent ones are constants)."""
    for mod_name, mod in module.named_modules():
        for name, buf in mod._buffers.items():
            if buf is not None and name not in mod._non_persistent_buffers_set:
                yield (f'{mod_name}.{name}' if mod_name else name), buf


def ema_momentum(step: int, momentum: float, warmup_iters: int = 0,
                 warmup_momentum: float = 0.0) -> float:
    """Momentum at ``step`` (0-based): linear ramp from ``warmup_momentum`` to ``momentum``
    over ``warmup_iters`` steps, then constant."""
    if warmup_iters <= 0 or step >= warmup_iters:
        return momentum
    return warmup_momentum + (momentum - warmup_momentum) * step / warmup_iters


def _paired(teacher: dict[str, Tensor], student: dict[str, Tensor], what: str):
    if teacher.keys() != student.keys():
        diff = sorted(set(teacher) ^ set(student))
        raise RuntimeError(f'EMA: teacher and student {what} differ: {diff[:10]}')
    return [(teacher[k], student[k]) for k in teacher]


def _mean_over_ranks(tensors: list[Tensor]) -> list[Tensor]:
    """Rank-averaged copies of ``tensors`` (one all-reduce); the inputs are not modified."""
    if not tensors or not (dist.is_available() and dist.is_initialized()) \
            or dist.get_world_size() == 1:
        return tensors
    flat = torch.cat([t.detach().float().reshape(-1) for t in tensors])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    out, offset = [], 0
    for t in tensors:
        out.append(flat[offset:offset + t.numel()].view_as(t))
        offset += t.numel()
    return out


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, momentum: float,
               sync_buffers: bool = False) -> None:
    """One EMA step of ``teacher`` towards ``student`` (in place, float32 arithmetic)."""
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f'EMA momentum must lie in [0, 1], got {momentum}')
    params = _paired(dict(teacher.named_parameters()), dict(student.named_parameters()),
                     'parameters')
    buffers = _paired(dict(persistent_buffers(teacher)), dict(persistent_buffers(student)),
                      'buffers')
    for t, s in params:
        _ema_(t, s, momentum)
    float_buffers = [(t, s) for t, s in buffers if t.is_floating_point()]
    sources = [s for _, s in float_buffers]
    if sync_buffers:
        sources = _mean_over_ranks(sources)
    for (t, _), s in zip(float_buffers, sources):
        _ema_(t, s, momentum)
    for t, s in buffers:
        if not t.is_floating_point():
            t.copy_(s)


def _ema_(t: Tensor, s: Tensor, momentum: float) -> None:
    if momentum == 0.0:
        t.copy_(s)
    elif t.dtype == torch.float32:
        t.mul_(momentum).add_(s.to(torch.float32), alpha=1.0 - momentum)
    else:  # keep the average in float32 even if the teacher is stored in lower precision
        t.copy_(t.float().mul_(momentum).add_(s.float(), alpha=1.0 - momentum))


@HOOKS.register_module()
class TeacherEMAHook(Hook):
    """Keep ``model.teacher`` an exponential moving average of ``model.student``.

    Args:
        momentum: weight kept by the teacher per update (0.999 = slow teacher).
        interval: update every ``interval`` training iterations.
        warmup_iters: ramp the momentum linearly from ``warmup_momentum`` to ``momentum``
            over this many iterations (0 = no warm-up).
        warmup_momentum: momentum at iteration 0 of the warm-up.
        sync_buffers: average the student's buffers over ranks before averaging them into
            the teacher, so every rank's teacher stays identical.
        copy_at_start: at iteration 0 (not when resuming) copy the student into the
            teacher, so the teacher starts from whatever weights the student was given.
    """

    priority = 'NORMAL'  # after the optimiser step, before CheckpointHook (VERY_LOW)

    def __init__(self, momentum: float = 0.999, interval: int = 1, warmup_iters: int = 0,
                 warmup_momentum: float = 0.0, sync_buffers: bool = True,
                 copy_at_start: bool = True) -> None:
        for name, value in (('momentum', momentum), ('warmup_momentum', warmup_momentum)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f'TeacherEMAHook: {name} must lie in [0, 1], got {value}')
        if interval < 1 or warmup_iters < 0:
            raise ValueError(f'TeacherEMAHook: interval must be >= 1 and warmup_iters >= 0, '
                             f'got {interval}, {warmup_iters}')
        self.momentum = float(momentum)
        self.interval = int(interval)
        self.warmup_iters = int(warmup_iters)
        self.warmup_momentum = float(warmup_momentum)
        self.sync_buffers = sync_buffers
        self.copy_at_start = copy_at_start

    @staticmethod
    def _unwrap(runner) -> nn.Module:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        for name in ('student', 'teacher'):
            if not isinstance(getattr(model, name, None), nn.Module):
                raise TypeError(f'TeacherEMAHook needs a model with a `{name}` sub-module, '
                                f'got {type(model).__name__}')
        return model

    def before_train(self, runner) -> None:
        model = self._unwrap(runner)
        teacher_ids = {id(p) for p in model.teacher.parameters()}
        optimizer = getattr(runner.optim_wrapper, 'optimizer', None)
        if optimizer is not None:
            leaked = sum(id(p) in teacher_ids for g in optimizer.param_groups for p in g['params'])
            if leaked:
                raise RuntimeError(f'{leaked} teacher parameters are in the optimizer: the EMA '
                                   'teacher must only change through TeacherEMAHook')
        if self.copy_at_start and runner.iter == 0:
            ema_update(model.teacher, model.student, 0.0, sync_buffers=self.sync_buffers)

    def after_train_iter(self, runner, batch_idx: int, data_batch: Optional[dict] = None,
                         outputs: Optional[dict] = None) -> None:
        if (runner.iter + 1) % self.interval != 0:
            return
        momentum = ema_momentum(runner.iter, self.momentum, self.warmup_iters,
                                self.warmup_momentum)
        model = self._unwrap(runner)
        ema_update(model.teacher, model.student, momentum, sync_buffers=self.sync_buffers)
        runner.message_hub.update_scalar('train/ema_momentum', momentum)
