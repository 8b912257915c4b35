"""Model-level checks of the unlabeled terms on a tiny CPU model (no data loading):
L_dev's gradient reaches the student but not the prior (and with dev_min_shift only the
keypoints the prior moves far), the gate's A/B split drives L_cons and L_dev, under bf16
autocast L_dev and CMGC run in float32 and stay finite, and the frozen models (one ddp_prior
for Teacher B and the gate, the online geometric teacher) are read once, when training
starts, and stay out of the state dict."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from full_helpers import ABLATIONS_CPU
from mmengine.config import Config

from nk_train.models.ssl_estimator import UnlabeledBatch


def _full_model(repo_root, prior_ckpt, **semi_train_cfg):
    """The full CPU config's Stage1 model (random weights), not yet initialised."""
    from mmengine.registry import init_default_scope
    from mmpose.registry import MODELS

    init_default_scope('mmpose')
    cfg = Config.fromfile(str(repo_root / ABLATIONS_CPU['full']))
    cfg.model.init_from = None
    cfg.model.ddp_prior.checkpoint = str(prior_ckpt)
    cfg.model.semi_train_cfg.update(semi_train_cfg)
    torch.manual_seed(0)
    return MODELS.build(cfg.model.to_dict())


@pytest.fixture(scope='module')
def full_model(repo_root, prior_ckpt):
    model = _full_model(repo_root, prior_ckpt)
    model.init_weights()
    return model


def _sizes(model) -> tuple[tuple[int, int], tuple[int, int]]:
    """(input (h, w), heatmap (h, w)) of the model's codec."""
    codec = model.student.head.decoder
    return tuple(codec.input_size[::-1]), tuple(codec.heatmap_size[::-1])


def _batch(model, b=2, with_maps=True):
    from mmpose.structures import PoseDataSample

    (ih, iw), (h, w) = _sizes(model)
    torch.manual_seed(1)
    samples = []
    for i in range(b):
        s = PoseDataSample()
        meta = dict(nk_sample_id=i, geo_seed_k=0)
        if with_maps:
            meta.update(geo_depth=(1.0 + torch.rand(1, h, w)).numpy(),
                        geo_normal=torch.nn.functional.normalize(
                            torch.randn(3, h, w), dim=0).numpy(),
                        geo_valid=torch.ones(1, h, w).numpy())
        s.set_metainfo(meta)
        samples.append(s)
    x = torch.rand(b, 3, ih, iw)
    return UnlabeledBatch(x, samples, [x.clone()], [samples])


def _peaks(b, k, h, w, peak):
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32),
                            torch.arange(w, dtype=torch.float32), indexing='ij')
    g = torch.exp(-((xs - w / 2) ** 2 + (ys - h / 2) ** 2) / 8.0)
    return peak[:, None, None, None] * g.expand(b, k, h, w).clone()


def test_dev_gradient_reaches_the_student_not_the_prior(full_model):
    batch = _batch(full_model)
    student = full_model.heatmaps(full_model.student, batch.strong_inputs[0])
    teacher = torch.zeros_like(student)  # unsure teacher: every sample goes to Teacher B
    losses = full_model.unsup_losses(batch, teacher, [student])
    assert losses['num_use_teacherB'] == 2 and losses['num_use_teacherA'] == 0
    full_model.student.zero_grad()
    losses['loss_dev'].backward()
    grads = [p.grad for p in full_model.student.parameters() if p.grad is not None]
    assert grads and sum(g.abs().sum() for g in grads) > 0
    prior = full_model.prior_teacher.prior
    assert all(not p.requires_grad and p.grad is None for p in prior.parameters())
    assert 'prior' not in ''.join(full_model.state_dict())  # not saved in Stage1 checkpoints


def test_dev_min_shift_keeps_only_the_prior_large_corrections(full_model):
    """With dev_min_shift at the median of the prior's corrections, L_dev's gradient reaches
    exactly the keypoints the prior moves that far; above the largest, L_dev is off."""
    batch = _batch(full_model)
    student = full_model.heatmaps(full_model.student, batch.strong_inputs[0]).detach()
    student.requires_grad_(True)
    teacher = torch.zeros_like(student)  # unsure teacher: every sample goes to Teacher B
    y = full_model.decode(student.detach())
    h, w = student.shape[-2:]
    shift = ((y - full_model.prior_teacher(y)) / torch.tensor([float(w), float(h)])).norm(dim=-1)
    cfg = full_model.semi_train_cfg
    try:
        cfg['dev_min_shift'] = float(shift.median())
        grad, = torch.autograd.grad(full_model.unsup_losses(batch, teacher, [student])['loss_dev'],
                                    student)
        cfg['dev_min_shift'] = float(shift.max()) + 1.0
        off = full_model.unsup_losses(batch, teacher, [student])
    finally:
        cfg['dev_min_shift'] = 0.0
    reached = grad.flatten(2).abs().sum(-1) > 0
    assert torch.equal(reached, shift >= shift.median()), (reached, shift)
    assert 0 < int(reached.sum()) < reached.numel()
    assert float(off['loss_dev']) == 0.0 and off['num_use_teacherB'] == 0


def test_gate_split_drives_cons_and_dev(full_model):
    """Hand-made teacher heatmaps: sample 0 confident, sample 1 unsure; a KPS threshold of 0
    makes confidence decide, so sample 0 -> Teacher A (L_cons), sample 1 -> Teacher B."""
    gate = full_model.gate
    old = gate.thr_kps
    gate.thr_kps = 0.0
    try:
        batch = _batch(full_model)
        k = full_model.student.head.out_channels
        teacher = _peaks(2, k, *_sizes(full_model)[1], torch.tensor([0.9, 0.2]))
        student = torch.rand_like(teacher, requires_grad=True)
        losses = full_model.unsup_losses(batch, teacher, [student])
    finally:
        gate.thr_kps = old
    assert losses['num_use_teacherA'] == 1 and losses['num_use_teacherB'] == 1
    assert losses['cons_keep_ratio'] == pytest.approx(0.5)
    # L_cons only sees sample 0, L_dev only sample 1
    g_cons, = torch.autograd.grad(losses['loss_cons'], student, retain_graph=True)
    g_dev, = torch.autograd.grad(losses['loss_dev'], student, retain_graph=True)
    assert g_cons[0].abs().sum() > 0 and g_cons[1].abs().sum() == 0
    assert g_dev[1].abs().sum() > 0 and g_dev[0].abs().sum() == 0


def test_dev_and_cmgc_are_float32_and_finite_under_bf16_autocast(full_model):
    batch = _batch(full_model)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        student = full_model.heatmaps(full_model.student, batch.strong_inputs[0])
        assert student.dtype == torch.bfloat16  # autocast is really on
        teacher = full_model.heatmaps(full_model.teacher, batch.weak_inputs).detach()
        losses = full_model.unsup_losses(batch, teacher, [student])
    for key in ('loss_dev', 'loss_geo_depth', 'loss_geo_normal'):
        assert losses[key].dtype == torch.float32, key
        assert torch.isfinite(losses[key]), key
    (losses['loss_dev'] + losses['loss_geo_depth'] + losses['loss_geo_normal']).backward()


def test_missing_maps_name_the_sample(full_model):
    batch = _batch(full_model, with_maps=False)
    student = torch.rand(2, full_model.student.head.out_channels, *_sizes(full_model)[1])
    with pytest.raises(KeyError, match='sample 0 view 0.*LoadGeoCacheMaps'):
        full_model.unsup_losses(batch, torch.zeros_like(student), [student])


@pytest.mark.parametrize('zero', ['lambda_geo_depth', 'lambda_geo_normal'])
def test_zero_geo_lambda_skips_its_term(full_model, monkeypatch, zero):
    """A geo lambda of 0 must not compute that term (not compute and drop it)."""
    from nk_train.cmgc.losses import CMGCLoss

    called = []
    for name in ('_depth_term', '_normal_term'):
        original = getattr(CMGCLoss, name)

        def spy(self, *args, _name=name, _original=original):
            called.append(_name)
            return _original(self, *args)

        monkeypatch.setattr(CMGCLoss, name, spy)
    monkeypatch.setitem(full_model.semi_train_cfg, zero, 0.0)
    batch = _batch(full_model)
    student = torch.rand(2, full_model.student.head.out_channels, *_sizes(full_model)[1])
    losses = full_model.unsup_losses(batch, torch.zeros_like(student), [student])
    kept, skipped = (('loss_geo_normal', 'loss_geo_depth') if zero == 'lambda_geo_depth'
                     else ('loss_geo_depth', 'loss_geo_normal'))
    assert kept in losses and skipped not in losses
    assert called == ['_' + kept.split('_')[-1] + '_term']


def test_gate_kps_prior_term_uses_the_model_prior(full_model, prior_ckpt):
    """The full config's gate weighs the ddp_prior term without naming a checkpoint: it gets
    model.ddp_prior's, and stays out of the Stage1 state dict."""
    kps = full_model.gate.kps
    assert kps.weights['prior'] > 0
    assert kps.prior.meta['checkpoint'] == str(prior_ckpt)
    assert not [k for k in full_model.state_dict() if 'prior' in k]


def test_one_prior_for_teacher_b_and_the_gate_read_once(repo_root, prior_ckpt, monkeypatch):
    real_load, reads = torch.load, []

    def counting_load(f, *args, **kwargs):
        reads.extend([f] if Path(f) == prior_ckpt else [])
        return real_load(f, *args, **kwargs)

    monkeypatch.setattr(torch, 'load', counting_load)
    model = _full_model(repo_root, prior_ckpt)
    assert not reads  # building the model (as for evaluation) reads no prior
    model.init_weights()
    assert len(reads) == 1
    prior = model.ddp_prior.get()
    assert model.prior_teacher.prior is prior and model.gate.kps.prior is prior
    batch = _batch(model)
    student = model.heatmaps(model.student, batch.strong_inputs[0])
    model.unsup_losses(batch, torch.zeros_like(student), [student])  # Teacher B and the KPS
    assert len(reads) == 1


def test_online_geometric_teacher_is_read_at_training_start_and_not_saved(repo_root,
                                                                           prior_ckpt):
    model = _full_model(repo_root, prior_ckpt, cmgc_source='online')
    assert not model.online_geo_teacher.frozen.loaded  # evaluation needs no teacher files
    model.init_weights()
    teacher = model.online_geo_teacher.teacher
    assert model.online_geo_teacher.frozen.loaded
    model.train()
    assert not any(m.training for m in teacher.modules())
    assert {k.split('.', 1)[0] for k in model.state_dict()} == {'student', 'teacher'}
    frozen = {id(p) for m in (teacher, model.ddp_prior.get()) for p in m.parameters()}
    assert frozen and not frozen & {id(p) for p in model.parameters()}  # nor optimised, EMA'd


def test_keypoint_cutout_blanks_only_around_confident_teacher_peaks():
    """A confident peak at heatmap pixel (x 4, y 6) blanks the input patch at its UDP position;
    an unconfident keypoint is never a centre; num 0 leaves the view untouched."""
    from nk_train.models.keypoint_cutout import keypoint_cutout

    images = torch.ones(1, 3, 33, 25)  # input 25 x 33 (w x h), heatmap 7 x 9: UDP x4
    heat = torch.zeros(1, 2, 9, 7)
    heat[0, 0, 6, 4] = 0.9  # confident: input pixel (16, 24)
    heat[0, 1, 1, 1] = 0.1  # below conf_thr
    assert keypoint_cutout(images, heat, 0, 0.2, 0.3) is images
    out = keypoint_cutout(images, heat, 2, 0.2, 0.3)
    hidden = out[0, 0] == 0
    ys, xs = hidden.nonzero(as_tuple=True)
    assert torch.equal(out[0, 0], out[0, 2])  # every channel
    assert (int(xs.min()), int(xs.max())) == (14, 18)  # |x - 16| <= 0.2 * 25 / 2
    assert (int(ys.min()), int(ys.max())) == (21, 27)  # |y - 24| <= 0.2 * 33 / 2
    assert int(hidden.sum()) == 5 * 7
    assert not hidden[4, 4]  # the unconfident keypoint's position stays


def test_keypoint_cutout_reaches_the_student_only(full_model, monkeypatch):
    """With kpt_cutout_num > 0 the student sees the blanked strong view, the teacher the
    weak view as it is."""
    batch = _batch(full_model, with_maps=False)
    seen = []
    monkeypatch.setattr(full_model, 'heatmaps',
                        lambda model, x: seen.append((model, x.clone())) or torch.zeros(
                            x.shape[0], 17, *_sizes(full_model)[1]).index_fill_(
                            2, torch.tensor([3]), 1.0))
    monkeypatch.setitem(full_model.semi_train_cfg, 'kpt_cutout_num', 1)
    monkeypatch.setattr(full_model, 'unsup_losses', lambda *a: {})
    inputs = {'weak': batch.weak_inputs, 'strong_0': batch.strong_inputs[0]}
    samples = {'weak': batch.weak_samples, 'strong_0': batch.strong_samples[0]}
    full_model.loss(inputs, samples)
    (teacher, weak), (student, strong) = seen
    assert teacher is full_model.teacher and torch.equal(weak, batch.weak_inputs)
    assert student is full_model.student
    assert (strong == 0).any() and not (batch.strong_inputs[0] == 0).any()


def test_teacher_flip_pseudo_labels_mirror_with_the_view(full_model, monkeypatch):
    """teacher_flip off: the teacher's heatmaps as they are. On: the pseudo-label of a mirrored
    view is the pseudo-label of the view flipped with left and right swapped (the random
    teacher alone is not, so a wrong flip or swap fails)."""
    from nk_train.skeleton import load_skeleton

    swap = list(load_skeleton().flip_indices)
    x = _batch(full_model).weak_inputs
    teacher = full_model.teacher
    with torch.no_grad():
        plain = full_model.teacher_heatmaps(x)
        assert torch.equal(plain, full_model.heatmaps(teacher, x))
        assert not torch.allclose(full_model.heatmaps(teacher, x.flip(-1)),
                                  plain.flip(-1)[:, swap], atol=1e-4)
        monkeypatch.setitem(full_model.semi_train_cfg, 'teacher_flip', True)
        averaged = full_model.teacher_heatmaps(x)
        of_mirror = full_model.teacher_heatmaps(x.flip(-1))
    assert not torch.allclose(averaged, plain, atol=1e-4)
    assert torch.allclose(of_mirror, averaged.flip(-1)[:, swap], atol=1e-6)


def test_sigmoid_rampup_by_hand():
    from nk_train.models.ssl_estimator import sigmoid_rampup

    assert sigmoid_rampup(7, 0) == 1.0  # off
    assert sigmoid_rampup(0, 100) == pytest.approx(math.exp(-5.0))
    assert sigmoid_rampup(50, 100) == pytest.approx(math.exp(-1.25))
    assert sigmoid_rampup(100, 100) == sigmoid_rampup(250, 100) == 1.0


def test_cons_rampup_scales_l_cons_by_the_iteration(full_model, monkeypatch):
    """cons_rampup_iters=N: at iteration it, loss_cons is the unramped term times
    exp(-5 (1 - it/N)^2) (full from N on; the weight is logged as cons_weight); with no
    iteration recorded it is an error, never a silent full weight."""
    from mmengine.logging import MessageHub

    cfg = full_model.semi_train_cfg
    for key in ('lambda_dev', 'lambda_geo_depth', 'lambda_geo_normal'):
        monkeypatch.setitem(cfg, key, 0.0)
    monkeypatch.setattr(full_model, 'gate', None)  # every sample to Teacher A
    batch = _batch(full_model, with_maps=False)
    h, w = _sizes(full_model)[1]
    torch.manual_seed(2)
    teacher, student = torch.rand(2, 17, h, w), [torch.rand(2, 17, h, w)]
    plain = full_model.unsup_losses(batch, teacher, student)
    assert float(plain['loss_cons']) > 0 and 'cons_weight' not in plain
    monkeypatch.setitem(cfg, 'cons_rampup_iters', 100)
    hub = MessageHub.get_instance('cons_rampup_test')
    for it, ramp in [(0, math.exp(-5.0)), (50, math.exp(-1.25)), (100, 1.0), (250, 1.0)]:
        hub.update_info('iter', it)
        out = full_model.unsup_losses(batch, teacher, student)
        assert torch.allclose(out['loss_cons'], plain['loss_cons'] * ramp)
        assert float(out['cons_weight']) == pytest.approx(full_model.lambda_cons * ramp)
    MessageHub.get_instance('cons_rampup_no_iteration')
    with pytest.raises(RuntimeError, match='cons_rampup_iters'):
        full_model.unsup_losses(batch, teacher, student)
