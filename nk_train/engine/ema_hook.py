"""EMA Teacher A: after every optimiser step the teacher moves towards the student.

    teacher <- decay * teacher + (1 - decay) * student         (e.g. decay = 0.999)

``decay`` is the weight the teacher keeps. mmengine's ``EMAHook`` / ``ExponentialMovingAverage``
and mmdet's ``MeanTeacherHook`` call the other weight, the student's, ``momentum`` (0.0002,
0.001): decay = 1 - momentum. The hook takes only ``decay`` and refuses ``momentum=`` and a
decay below 0.5, so a value copied from there cannot silently make the teacher a copy of the
student.

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


def ema_decay(step: int, decay: float, warmup_iters: int = 0, warmup_decay: float = 0.0) -> float:
    """Decay at ``step`` (0-based): linear ramp from ``warmup_decay`` to ``decay`` over
    ``warmup_iters`` steps, then constant."""
    if warmup_iters <= 0 or step >= warmup_iters:
        return decay
    return warmup_decay + (decay - warmup_decay) * step / warmup_iters


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
def ema_update(teacher: nn.Module, student: nn.Module, decay: float,
               sync_buffers: bool = False) -> None:
    """One EMA step of ``teacher`` towards ``student`` (in place, float32 arithmetic);
    ``decay`` = 0 copies the student."""
    if not 0.0 <= decay <= 1.0:
        raise ValueError(f'EMA decay must lie in [0, 1], got {decay}')
    params = _paired(dict(teacher.named_parameters()), dict(student.named_parameters()),
                     'parameters')
    buffers = _paired(dict(persistent_buffers(teacher)), dict(persistent_buffers(student)),
                      'buffers')
    for t, s in params:
        _ema_(t, s, decay)
    float_buffers = [(t, s) for t, s in buffers if t.is_floating_point()]
    sources = [s for _, s in float_buffers]
    if sync_buffers:
        sources = _mean_over_ranks(sources)
    for (t, _), s in zip(float_buffers, sources):
        _ema_(t, s, decay)
    for t, s in buffers:
        if not t.is_floating_point():
            t.copy_(s)


def _ema_(t: Tensor, s: Tensor, decay: float) -> None:
    if decay == 0.0:
        t.copy_(s)
    elif t.dtype == torch.float32:
        t.mul_(decay).add_(s.to(torch.float32), alpha=1.0 - decay)
    else:  # keep the average in float32 even if the teacher is stored in lower precision
        t.copy_(t.float().mul_(decay).add_(s.float(), alpha=1.0 - decay))


# Below this a decay is more likely the student's weight of the other convention (momentum).
MIN_DECAY = 0.5


def _refuse_momentum(momentum: Optional[float], warmup_momentum: Optional[float]) -> None:
    """``momentum=`` / ``warmup_momentum=`` are refused: mmengine and mmdet use the word for
    the student's weight, so a value under that name cannot be read one way only."""
    for name, value in (('momentum', momentum), ('warmup_momentum', warmup_momentum)):
        if value is None:
            continue
        new = name.replace('momentum', 'decay')
        both = ''
        if isinstance(value, (int, float)) and 0.0 <= value <= 1.0:
            both = (f' Write {new}={value:g} if {value:g} is the teacher\'s weight (what '
                    f'this hook called momentum before), {new}={1.0 - value:g} if it is the '
                    f'student\'s.')
        raise TypeError(f"TeacherEMAHook takes {new}= (the weight the teacher keeps), not "
                        f"{name}={value!r}: mmengine's EMAHook and mmdet's MeanTeacherHook "
                        f"call the student's weight momentum (decay = 1 - momentum).{both}")


@HOOKS.register_module()
class TeacherEMAHook(Hook):
    """Keep ``model.teacher`` an exponential moving average of ``model.student``.

    Args:
        decay: weight the teacher keeps per update (0.999 = slow teacher), in [0.5, 1]; a
            smaller value is refused as the student's weight of mmengine/mmdet (momentum).
        interval: update every ``interval`` training iterations.
        warmup_iters: ramp the decay linearly from ``warmup_decay`` to ``decay`` over this
            many iterations (0 = no warm-up).
        warmup_decay: decay at iteration 0 of the warm-up, in [0, 1] (0 = copy the student).
        sync_buffers: average the student's buffers over ranks before averaging them into
            the teacher, so every rank's teacher stays identical.
        copy_at_start: at iteration 0 (not when resuming) copy the student into the
            teacher, so the teacher starts from whatever weights the student was given.
        momentum, warmup_momentum: refused with the value to write instead (see above).
    """

    priority = 'NORMAL'  # after the optimiser step, before CheckpointHook (VERY_LOW)

    def __init__(self, decay: float = 0.999, interval: int = 1, warmup_iters: int = 0,
                 warmup_decay: float = 0.0, sync_buffers: bool = True,
                 copy_at_start: bool = True, *, momentum: Optional[float] = None,
                 warmup_momentum: Optional[float] = None) -> None:
        _refuse_momentum(momentum, warmup_momentum)
        for name, value in (('decay', decay), ('warmup_decay', warmup_decay)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f'TeacherEMAHook: {name} must lie in [0, 1], got {value}')
        if decay < MIN_DECAY:
            raise ValueError(
                f"TeacherEMAHook: decay={decay} is below {MIN_DECAY}: decay is the weight the "
                f"teacher keeps, so the teacher would nearly copy the student at every update. "
                f"This looks like the other convention, mmengine's / mmdet's momentum (the "
                f"student's weight, = 1 - decay): for momentum={decay:g} write "
                f"decay={1.0 - decay:g}.")
        if interval < 1 or warmup_iters < 0:
            raise ValueError(f'TeacherEMAHook: interval must be >= 1 and warmup_iters >= 0, '
                             f'got {interval}, {warmup_iters}')
        self.decay = float(decay)
        self.interval = int(interval)
        self.warmup_iters = int(warmup_iters)
        self.warmup_decay = float(warmup_decay)
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
        decay = ema_decay(runner.iter, self.decay, self.warmup_iters, self.warmup_decay)
        model = self._unwrap(runner)
        ema_update(model.teacher, model.student, decay, sync_buffers=self.sync_buffers)
        runner.message_hub.update_scalar('train/ema_decay', decay)
