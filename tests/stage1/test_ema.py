"""EMA Teacher A: exact update of parameters and buffers, the hook, frozen teacher, optimizer."""
from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.logging import MessageHub
from mmengine.registry import init_default_scope
from torch import nn

from nk_train.engine.ema_hook import TeacherEMAHook, ema_decay, ema_update

from stage1_helpers import STAGE0_CPU, STAGE1_CPU


class Pair(nn.Module):
    """Student/teacher pair of a small net with BatchNorm (parameters + running buffers)."""

    def __init__(self) -> None:
        super().__init__()
        self.student = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
        self.teacher = copy.deepcopy(self.student)
        self.teacher.requires_grad_(False)


def _fill(module: nn.Module, offset: float) -> None:
    """Small multiples of 1/4: m*t + (1-m)*s is exact in float32 for m = 0.75."""
    with torch.no_grad():
        for i, t in enumerate([*module.parameters(), *module.buffers()]):
            if t.is_floating_point():
                t.copy_((torch.arange(t.numel()).view_as(t) + offset + i) / 4)


def _hand_ema(t: torch.Tensor, s: torch.Tensor, m: float) -> torch.Tensor:
    return t * m + s * (1 - m)


def test_ema_update_is_exact_for_parameters_and_buffers():
    pair = Pair()
    _fill(pair.student, 8.0)
    _fill(pair.teacher, 0.0)
    pair.student[1].num_batches_tracked.fill_(7)
    before = copy.deepcopy(pair.teacher.state_dict())
    ema_update(pair.teacher, pair.student, 0.75)
    after, student = pair.teacher.state_dict(), pair.student.state_dict()
    for name in ('0.weight', '0.bias', '1.weight', '1.bias', '1.running_mean', '1.running_var'):
        assert torch.equal(after[name], _hand_ema(before[name], student[name], 0.75)), name
        assert not torch.equal(after[name], before[name]), name
    assert after['1.num_batches_tracked'].item() == 7  # integer buffers are copied


def test_ema_update_refuses_different_architectures():
    pair = Pair()
    pair.teacher.append(nn.Linear(4, 1))
    with pytest.raises(RuntimeError, match='differ'):
        ema_update(pair.teacher, pair.student, 0.5)


def test_decay_warmup_ramps_linearly():
    assert ema_decay(0, 0.999, warmup_iters=10, warmup_decay=0.5) == 0.5
    assert ema_decay(5, 0.999, 10, 0.5) == pytest.approx(0.7495)
    assert ema_decay(10, 0.999, 10, 0.5) == 0.999
    assert ema_decay(3, 0.9) == 0.9


def _runner(model, it: int, optimizer=None):
    return SimpleNamespace(model=model, iter=it, message_hub=MessageHub.get_instance('ema_test'),
                           optim_wrapper=SimpleNamespace(optimizer=optimizer))


def test_hook_applies_the_configured_decay_each_interval():
    pair = Pair()
    _fill(pair.student, 4.0)
    _fill(pair.teacher, 0.0)
    hook = TeacherEMAHook(decay=0.75, interval=2)
    t0 = copy.deepcopy(pair.teacher.state_dict())
    hook.after_train_iter(_runner(pair, it=0), 0)  # (0 + 1) % 2 != 0: no update
    assert all(torch.equal(t0[k], v) for k, v in pair.teacher.state_dict().items())
    hook.after_train_iter(_runner(pair, it=1), 1)
    s = pair.student.state_dict()
    assert torch.equal(pair.teacher[0].weight, _hand_ema(t0['0.weight'], s['0.weight'], 0.75))
    assert torch.equal(pair.teacher[1].running_var,
                       _hand_ema(t0['1.running_var'], s['1.running_var'], 0.75))


def test_hook_refuses_a_decay_of_the_other_convention():
    """mmdet's MeanTeacherHook(momentum=0.001) is the student's weight: as a decay it would
    make the teacher a copy of the student, so it is refused with the value to write."""
    with pytest.raises(ValueError, match=r"decay=0\.001 is below 0\.5.*write decay=0\.999"):
        TeacherEMAHook(decay=0.001)
    assert TeacherEMAHook(decay=0.5).decay == 0.5


@pytest.mark.parametrize('name', ['momentum', 'warmup_momentum'])
def test_hook_refuses_momentum_naming_both_readings(name):
    """Under the name ``momentum`` a value could be either weight: refused, not guessed."""
    with pytest.raises(TypeError, match=rf"takes {name.replace('momentum', 'decay')}=.*"
                       rf"not {name}=0\.999.*=0\.999 if 0\.999 is the teacher's.*=0\.001"):
        TeacherEMAHook(**{name: 0.999})
    from mmpose.registry import HOOKS  # through the registry, as a config builds it

    with pytest.raises(TypeError, match='not momentum=0.001'):
        HOOKS.build(dict(type='TeacherEMAHook', momentum=0.001))


def test_hook_copies_the_student_at_start_and_refuses_teacher_in_optimizer():
    pair = Pair()
    _fill(pair.student, 4.0)
    TeacherEMAHook().before_train(_runner(pair, it=0))
    for (name, t), s in zip(pair.teacher.state_dict().items(), pair.student.state_dict().values()):
        assert torch.equal(t, s), name
    leaky = torch.optim.SGD([*pair.student.parameters(), *pair.teacher.parameters()], lr=0.1)
    with pytest.raises(RuntimeError, match='teacher parameters are in the optimizer'):
        TeacherEMAHook().before_train(_runner(pair, it=0, optimizer=leaky))


@pytest.fixture(scope='module')
def ssl_model(repo_root):
    import nk_train  # noqa: F401
    from mmpose.registry import MODELS

    init_default_scope('mmpose')
    cfg = Config.fromfile(str(repo_root / STAGE1_CPU))
    cfg.model.init_from = None
    return MODELS.build(cfg.model), cfg


def test_teacher_stays_frozen_in_eval_mode(ssl_model):
    model, _ = ssl_model
    model.train()
    assert model.student.training
    assert not any(m.training for m in model.teacher.modules())
    assert not any(p.requires_grad for p in model.teacher.parameters())
    model.teacher.train()  # as if something bypassed SemiTopdownPoseEstimator.train
    with pytest.raises(RuntimeError, match='eval mode'):
        model.loss({}, {})
    model.train()


def test_layer_decay_groups_cover_the_student_only(ssl_model, repo_root):
    """Same per-parameter learning rates as Stage0's constructor on a plain model (at the
    same base rate)."""
    from mmengine.optim import build_optim_wrapper

    model, cfg = ssl_model
    ours = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))
    plain_cfg = Config.fromfile(str(repo_root / STAGE0_CPU))
    plain_cfg.optim_wrapper.optimizer.lr = cfg.optim_wrapper.optimizer.lr  # Stage0 CPU's is higher
    reference = build_optim_wrapper(model.student, copy.deepcopy(plain_cfg.optim_wrapper))

    def rates(wrapper):
        return {id(p): (g['lr'], g['weight_decay'])
                for g in wrapper.optimizer.param_groups for p in g['params']}

    assert rates(ours) == rates(reference)
    assert len({lr for lr, _ in rates(ours).values()}) == cfg.model.pose_model.backbone.arch[
        'num_layers'] + 2  # patch embed, each block, head: layer decay really applies
    assert not {id(p) for p in model.teacher.parameters()} & rates(ours).keys()

    stray = copy.deepcopy(model)
    stray.extra = nn.Linear(1, 1)
    with pytest.raises(ValueError, match='outside the student'):
        build_optim_wrapper(stray, copy.deepcopy(cfg.optim_wrapper))


def test_plain_stage0_weights_fill_both_branches(ssl_model, tmp_path):
    from mmengine.runner.checkpoint import load_checkpoint
    from mmpose.registry import MODELS

    model, cfg = ssl_model
    plain = MODELS.build(cfg.model.pose_model)
    _fill(plain, 1.0)
    path = tmp_path / 'plain.pth'
    torch.save({'state_dict': plain.state_dict()}, path)

    init_cfg = copy.deepcopy(cfg.model)
    init_cfg.init_from = str(path)
    via_init = MODELS.build(init_cfg)
    via_init.init_weights()
    via_load = MODELS.build(cfg.model)
    load_checkpoint(via_load, str(path), strict=True)  # what mmengine's load_from does
    for loaded in (via_init, via_load):
        for branch in (loaded.student, loaded.teacher):
            for name, value in plain.state_dict().items():
                assert torch.equal(branch.state_dict()[name], value), name

    broken = dict(plain.state_dict())
    broken.pop('head.final_layer.weight')
    torch.save({'state_dict': broken}, path)
    with pytest.raises(RuntimeError, match='plain.pth'):
        MODELS.build(init_cfg).init_weights()
    init_cfg.init_from = str(tmp_path / 'missing.pth')
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        MODELS.build(init_cfg).init_weights()


def test_export_cuts_out_one_branch(ssl_model):
    from mmpose.registry import MODELS

    from nk_train.models.export import extract_branch

    model, cfg = ssl_model
    _fill(model.teacher, 2.0)
    ckpt = {'meta': {'iter': 5}, 'state_dict': model.state_dict(), 'optimizer': {}}
    exported = extract_branch(ckpt, 'teacher', source='x.pth')
    assert set(exported) == {'meta', 'state_dict'}
    plain = MODELS.build(cfg.model.pose_model)
    plain.load_state_dict(exported['state_dict'], strict=True)
    for name, value in plain.state_dict().items():
        assert torch.equal(value, model.teacher.state_dict()[name]), name
    assert not torch.equal(plain.head.final_layer.weight, model.student.head.final_layer.weight)
    with pytest.raises(ValueError, match='Stage1'):
        extract_branch({'state_dict': plain.state_dict()}, 'teacher')
