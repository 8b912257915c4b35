"""Stage1 end to end on real SyRIP subsets: 50 iterations, frozen teacher, EMA in the loop,
test + export of the teacher, and a 2-process (gloo) run with identical teachers."""
from __future__ import annotations

import copy
import json
import math
import pickle
import re

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from stage1_helpers import STAGE0_CPU, STAGE1_CPU, VAL_INDICES, as_cli, run_cli, subset_cfg

SMOKE_ITERS = 50
EMA_DECAY = 0.9


class TeacherWatch(Hook):
    """Records the modes after the loop's ``model.train()`` and checks each EMA step."""

    priority = 'LOWEST'  # after TeacherEMAHook (NORMAL)

    def __init__(self) -> None:
        self.modes, self.ema_errors = [], []
        self._before = None

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        model = runner.model
        self.modes.append((model.student.training,
                           any(m.training for m in model.teacher.modules())))
        self._before = copy.deepcopy(model.teacher.state_dict())

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        student, teacher = runner.model.student.state_dict(), runner.model.teacher.state_dict()
        worst = 0.0
        for name, t0 in self._before.items():
            if t0.is_floating_point():
                expect = EMA_DECAY * t0 + (1 - EMA_DECAY) * student[name]
                worst = max(worst, (teacher[name] - expect).abs().max().item())
        self.ema_errors.append(worst)


def train_watched(cfg: Config, watch: Hook) -> Hook:
    """Train ``cfg`` in-process without validation, ``watch`` registered; returns it."""
    from mmengine.runner import Runner

    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.default_hooks.checkpoint.pop('save_best')
    runner = Runner.from_cfg(cfg)
    runner.register_hook(watch)
    runner.train()
    return watch


@pytest.fixture(scope='module')
def smoke_run(repo_root, stage0_checkpoint, tmp_path_factory):
    """50 Stage1 iterations in-process (batch 2 labeled + 2 unlabeled, every keypoint kept)."""
    work = tmp_path_factory.mktemp('stage1_smoke')
    cfg = Config.fromfile(str(repo_root / STAGE1_CPU))
    cfg.merge_from_dict({
        'work_dir': str(work), 'model.init_from': str(stage0_checkpoint),
        # keep every keypoint so L_cons has a gradient even with a 10-iteration Stage0 teacher
        'model.consistency_loss.conf_thr': -1e9,
        'train_cfg.max_iters': SMOKE_ITERS, 'default_hooks.checkpoint.interval': SMOKE_ITERS,
        'default_hooks.logger.interval': 10, 'train_dataloader.batch_size': 4,
        'train_dataloader.sampler.batch_size': 4,
        'custom_hooks': [dict(type='TeacherEMAHook', decay=EMA_DECAY)],
        **subset_cfg(),
    })
    return work, train_watched(cfg, TeacherWatch())


def test_fifty_iterations_log_finite_terms(smoke_run):
    work, _ = smoke_run
    rows = [json.loads(line) for line in
            sorted(work.glob('*/vis_data/scalars.json'))[-1].read_text().splitlines()]
    rows = [r for r in rows if 'loss' in r]
    assert max(r['iter'] for r in rows) == SMOKE_ITERS
    for key in ('loss', 'loss_sup', 'loss_cons', 'cons_keep_ratio', 'sup_acc_pose',
                'ema_decay'):
        values = [r[key] for r in rows]
        assert values and all(math.isfinite(v) for v in values), (key, values)
    assert all(r['cons_keep_ratio'] == 1.0 and r['loss_cons'] > 0 for r in rows)
    assert (work / f'iter_{SMOKE_ITERS}.pth').is_file()


def test_teacher_stays_in_eval_mode_and_follows_the_ema(smoke_run):
    _, watch = smoke_run
    assert len(watch.modes) == SMOKE_ITERS
    assert all(student for student, _ in watch.modes)  # the loop did call model.train()
    assert not any(teacher for _, teacher in watch.modes)
    assert max(watch.ema_errors) < 1e-6, watch.ema_errors


AP_LINE = re.compile(r'(?:teacher/)?coco/AP: (-?\d+\.\d+)')


def test_export_gives_the_teachers_predictions_in_the_stage0_config(smoke_run, repo_root):
    work, _ = smoke_run
    ckpt = work / f'iter_{SMOKE_ITERS}.pth'
    subset = f'test_dataloader.dataset.indices={VAL_INDICES}'
    out1 = run_cli(['tools/test.py', STAGE1_CPU, '--checkpoint', str(ckpt), '--work-dir',
                    str(work / 'test_stage1'), '--out', str(work / 'stage1.pkl'),
                    '--cfg-options', subset], repo_root)
    run_cli(['tools/export_pose_model.py', str(ckpt), str(work / 'teacher.pth')], repo_root)
    out0 = run_cli(['tools/test.py', STAGE0_CPU, '--checkpoint', str(work / 'teacher.pth'),
                    '--work-dir', str(work / 'test_stage0'), '--out', str(work / 'stage0.pkl'),
                    '--cfg-options', subset], repo_root)
    assert 'teacher/coco/AP:' in out1
    ap1, ap0 = AP_LINE.findall(out1)[-1], AP_LINE.findall(out0)[-1]
    assert ap1 == ap0
    preds = [pickle.loads((work / f).read_bytes()) for f in ('stage1.pkl', 'stage0.pkl')]
    assert len(preds[0]) == len(preds[1]) == len(VAL_INDICES)
    for a, b in zip(*preds):
        assert np.array_equal(a['pred_instances']['keypoints'], b['pred_instances']['keypoints'])
    student = torch.load(ckpt, map_location='cpu', weights_only=False)['state_dict']
    teacher = torch.load(work / 'teacher.pth', map_location='cpu')['state_dict']
    assert not torch.equal(teacher['head.final_layer.weight'],
                           student['student.head.final_layer.weight'])


def test_two_process_run_ends_with_identical_teachers(repo_root, stage0_checkpoint, tmp_path):
    """torchrun, 2 ranks on gloo. No SyncBuffersHook: the teachers agree only because the
    EMA hook averages the rank-local BatchNorm statistics itself."""
    cfg = tmp_path / 'stage1_dist.py'
    cfg.write_text(
        f"_base_ = [{str(repo_root / STAGE1_CPU)!r}]\n"
        "custom_hooks = [dict(type='TeacherEMAHook', decay=0.9),\n"
        "                dict(type='WeightDigestHook', modules=['teacher', 'student'])]\n")
    work = tmp_path / 'work'
    run_cli(['-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2',
             'tools/train.py', str(cfg), '--launcher', 'pytorch', '--work-dir', str(work),
             '--no-validate', '--cfg-options', 'train_cfg.max_iters=4',
             'default_hooks.checkpoint.interval=4', f'model.init_from={stage0_checkpoint}',
             'train_dataloader.batch_size=4', 'train_dataloader.sampler.batch_size=4',
             'train_dataloader.num_workers=0', 'train_dataloader.persistent_workers=False',
             *as_cli(subset_cfg())], repo_root)
    ranks = [json.loads((work / f'weight_digest_rank{r}.json').read_text()) for r in (0, 1)]
    assert ranks[0]['iter'] == ranks[1]['iter'] == 4
    d0, d1 = ranks[0]['digests'], ranks[1]['digests']
    assert d0['teacher'] == d1['teacher']
    assert d0['student']['parameters'] == d1['student']['parameters']
    assert d0['teacher']['parameters'] != d0['student']['parameters']  # an average, not a copy



class BatchWatch(Hook):
    """Records the branches and their sizes of each training batch, and the logged terms."""

    def __init__(self) -> None:
        self.batches, self.terms = [], []

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.batches.append({b: len(x) for b, x in data_batch['inputs'].items()})

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.terms.append({k: float(v) for k, v in outputs.items()})


def test_the_control_trains_labeled_crops_only_with_the_stage1_batch(
        repo_root, stage0_checkpoint, tmp_path):
    """stage1_control_cpu.py: every batch holds as many labeled crops as a Stage1 batch holds
    crops in all, none unlabeled, and no unlabeled term is logged."""
    stage1 = Config.fromfile(str(repo_root / STAGE1_CPU))
    cfg = Config.fromfile(str(repo_root / 'configs/nk_sapiens/infant/stage1_control_cpu.py'))
    assert cfg.train_dataloader.batch_size == stage1.train_dataloader.batch_size
    assert cfg.train_cfg == stage1.train_cfg and cfg.param_scheduler == stage1.param_scheduler
    cfg.merge_from_dict({
        'work_dir': str(tmp_path), 'model.init_from': str(stage0_checkpoint),
        'train_cfg.max_iters': 3, 'default_hooks.logger.interval': 1,
        'train_dataloader.num_workers': 0, 'train_dataloader.persistent_workers': False,
        **subset_cfg()})
    watch = train_watched(cfg, BatchWatch())
    assert watch.batches == [{'sup': cfg.train_dataloader.batch_size}] * 3
    assert len(watch.terms) == 3
    assert all('loss_sup' in r and r.get('loss_cons', 0.0) == 0.0 for r in watch.terms)
