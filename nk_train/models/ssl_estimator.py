"""Stage1 semi-supervised top-down estimator: a student and its EMA Teacher A.

    L = L_sup + lambda_cons * L_cons

* ``student``: a ``TopdownPoseEstimator`` built from the Stage0 model config; the only part
  the optimiser updates.
* ``teacher`` (Teacher A): the same architecture, frozen (no gradients, always in eval mode,
  even though the training loop calls ``model.train()`` every iteration), moved towards the
  student by ``TeacherEMAHook``.
* L_sup: the student head's own loss on the labeled crops (branch ``sup``).
* L_cons: the student on each strong view against the teacher on the weak view of the same
  unlabeled crop, filtered by the teacher's confidence (``HeatmapConsistencyLoss``).

Later terms (L_dev, CMGC, hybrid gating) extend :meth:`unsup_losses`, where the teacher's
weak-view heatmaps and the student's strong-view heatmaps are both at hand, and add their
lambda names to ``train_cfg_keys``.

Initialisation from Stage0: ``init_from=<Stage0 checkpoint>`` loads the plain
``TopdownPoseEstimator`` weights strictly into both student and teacher when training
starts (``init_weights``). A plain checkpoint given to mmengine's ``load_from`` is also
accepted: its keys are copied to ``student.*`` and ``teacher.*`` on load.

Validation/test run one branch: ``semi_test_cfg=dict(forward_on='teacher'|'student')``.
"""
from __future__ import annotations

import copy
import os.path as osp
from dataclasses import dataclass
from typing import Optional

import torch
from mmengine.model import BaseModel
from mmengine.runner.checkpoint import _load_checkpoint
from mmpose.registry import MODELS
from torch import Tensor

from ..data.views import STRONG_PREFIX, SUP, WEAK
from .consistency_loss import ConsistencyOutput

BRANCHES = ('student', 'teacher')


@dataclass
class UnlabeledBatch:
    """The unlabeled part of a batch: one weak view and aligned strong views per crop."""

    weak_inputs: Tensor
    weak_samples: list
    strong_inputs: list[Tensor]
    strong_samples: list[list]

    @classmethod
    def from_branches(cls, inputs: dict, data_samples: dict) -> 'UnlabeledBatch':
        names = sorted((b for b in inputs if b.startswith(STRONG_PREFIX)),
                       key=lambda b: int(b[len(STRONG_PREFIX):]))
        if not names:
            raise ValueError('Stage1 batch has a weak view but no strong_* view')
        n = inputs[WEAK].shape[0]
        for b in names:
            if inputs[b].shape != inputs[WEAK].shape:
                raise ValueError(f'branch {b} has shape {tuple(inputs[b].shape)} but weak has '
                                 f'{tuple(inputs[WEAK].shape)}: views must be aligned')
        if len(data_samples[WEAK]) != n:
            raise ValueError('weak branch: inputs and data_samples differ in length')
        return cls(inputs[WEAK], data_samples[WEAK], [inputs[b] for b in names],
                   [data_samples[b] for b in names])


def _plain_state_dict(checkpoint: dict, source: str) -> dict:
    state = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state, dict) or not state:
        raise ValueError(f'{source}: no state_dict in the checkpoint')
    return {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state.items()}


@MODELS.register_module()
class SemiTopdownPoseEstimator(BaseModel):
    """Student + EMA Teacher A around a top-down heatmap estimator.

    Args:
        pose_model: config of the ``TopdownPoseEstimator`` (the Stage0 ``model``).
        consistency_loss: config of the L_cons module (``HeatmapConsistencyLoss``).
        semi_train_cfg: loss weights; ``lambda_cons`` (0 skips the teacher/strong forward).
        semi_test_cfg: ``forward_on``: the branch used by validation/test/predict.
        data_preprocessor: defaults to ``SSLDataPreprocessor`` around the pose model's one.
        init_from: plain Stage0 (or Stage1) checkpoint loaded strictly at ``init_weights``.
    """

    train_cfg_keys = frozenset({'lambda_cons'})
    test_cfg_keys = frozenset({'forward_on'})

    def __init__(self, pose_model: dict, consistency_loss: dict = dict(
                 type='HeatmapConsistencyLoss'), semi_train_cfg: Optional[dict] = None,
                 semi_test_cfg: Optional[dict] = None, data_preprocessor: Optional[dict] = None,
                 init_from: Optional[str] = None, init_cfg: Optional[dict] = None) -> None:
        if data_preprocessor is None:
            if 'data_preprocessor' not in pose_model:
                raise ValueError('SemiTopdownPoseEstimator: pose_model has no data_preprocessor '
                                 'and none was given')
            data_preprocessor = dict(type='SSLDataPreprocessor',
                                     data_preprocessor=pose_model['data_preprocessor'])
        super().__init__(data_preprocessor=MODELS.build(data_preprocessor), init_cfg=init_cfg)
        self.student = MODELS.build(copy.deepcopy(pose_model))
        self.teacher = MODELS.build(copy.deepcopy(pose_model))
        self.teacher.requires_grad_(False)
        self.teacher.eval()
        self.consistency_loss = MODELS.build(consistency_loss)
        self.semi_train_cfg = self._checked(semi_train_cfg, dict(lambda_cons=1.0),
                                            self.train_cfg_keys, 'semi_train_cfg')
        self.semi_test_cfg = self._checked(semi_test_cfg, dict(forward_on='teacher'),
                                           self.test_cfg_keys, 'semi_test_cfg')
        if self.semi_test_cfg['forward_on'] not in BRANCHES:
            raise ValueError(f'semi_test_cfg.forward_on must be one of {BRANCHES}, got '
                             f'{self.semi_test_cfg["forward_on"]!r}')
        self.init_from = init_from
        self._register_load_state_dict_pre_hook(self._plain_to_branches)

    @staticmethod
    def _checked(cfg: Optional[dict], defaults: dict, allowed: frozenset, name: str) -> dict:
        merged = {**defaults, **(cfg or {})}
        unknown = set(merged) - allowed
        if unknown:  # a misspelt lambda would otherwise be silently ignored
            raise ValueError(f'{name}: unknown keys {sorted(unknown)}; known: {sorted(allowed)}')
        return merged

    @property
    def lambda_cons(self) -> float:
        return float(self.semi_train_cfg['lambda_cons'])

    # ---- modes ----------------------------------------------------------------------------
    def train(self, mode: bool = True) -> 'SemiTopdownPoseEstimator':
        """Switch the student (and everything else) but keep Teacher A in eval mode."""
        super().train(mode)
        self.teacher.eval()
        return self

    @property
    def eval_branch(self):
        return getattr(self, self.semi_test_cfg['forward_on'])

    def forward(self, inputs, data_samples=None, mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode not in ('predict', 'tensor'):
            raise RuntimeError(f'Invalid mode "{mode}": use loss, predict or tensor')
        return self.eval_branch(inputs, data_samples, mode=mode)

    # ---- losses ---------------------------------------------------------------------------
    def loss(self, inputs: dict, data_samples: dict) -> dict:
        if not isinstance(inputs, dict):
            raise TypeError('SemiTopdownPoseEstimator trains on branch-keyed batches '
                            '(ssl_collate + SSLDataPreprocessor), got '
                            f'{type(inputs).__name__} inputs')
        if self.teacher.training:
            raise RuntimeError('Teacher A is in train mode during a training step: it must '
                               'stay in eval mode (see SemiTopdownPoseEstimator.train)')
        losses: dict = {}
        if SUP in inputs:
            losses.update(self.loss_sup(inputs[SUP], data_samples[SUP]))
        if WEAK in inputs and self.unsup_enabled():
            batch = UnlabeledBatch.from_branches(inputs, data_samples)
            with torch.no_grad():
                teacher_heatmaps = self.heatmaps(self.teacher, batch.weak_inputs)
            strong = self.heatmaps(self.student, torch.cat(batch.strong_inputs))
            student_heatmaps = list(strong.split(batch.weak_inputs.shape[0]))
            losses.update(self.unsup_losses(batch, teacher_heatmaps, student_heatmaps))
        return losses

    def loss_sup(self, inputs: Tensor, data_samples: list) -> dict:
        """L_sup: the student head's loss on labeled crops; ``loss_kpt`` is logged as
        ``loss_sup``, other head outputs get a ``sup_`` prefix."""
        out = self.student.loss(inputs, data_samples)
        return {('loss_sup' if k == 'loss_kpt' else f'sup_{k}'): v for k, v in out.items()}

    def unsup_enabled(self) -> bool:
        """Whether any unlabeled term needs the teacher/strong forward passes."""
        return self.lambda_cons > 0

    def unsup_losses(self, batch: UnlabeledBatch, teacher_heatmaps: Tensor,
                     student_heatmaps: list[Tensor]) -> dict:
        """Losses on the unlabeled crops; extend here (L_dev, CMGC, gating counts).

        ``teacher_heatmaps``: Teacher A on the weak views (B, K, H, W), no gradient.
        ``student_heatmaps``: the student on each strong view, same shape, with gradient.
        """
        losses: dict = {}
        if self.lambda_cons > 0:
            outs: list[ConsistencyOutput] = [self.consistency_loss(s, teacher_heatmaps)
                                             for s in student_heatmaps]
            losses['loss_cons'] = self.lambda_cons * sum(o.loss for o in outs) / len(outs)
            losses['cons_keep_ratio'] = outs[0].keep.float().mean()
            losses['cons_teacher_conf'] = outs[0].confidence.mean()
        return losses

    @staticmethod
    def heatmaps(model, inputs: Tensor) -> Tensor:
        """(B, K, H, W) heatmaps of a ``TopdownPoseEstimator`` (its ``tensor`` mode)."""
        out = model(inputs, None, mode='tensor')
        if not (isinstance(out, Tensor) and out.dim() == 4):
            raise TypeError('L_cons needs a head whose forward returns (B, K, H, W) heatmaps, '
                            f'got {type(out).__name__}')
        return out

    # ---- checkpoints ----------------------------------------------------------------------
    def _plain_to_branches(self, state_dict: dict, prefix: str, *args) -> None:
        """Load hook: a plain ``TopdownPoseEstimator`` state dict fills both branches."""
        keys = [k for k in state_dict if k.startswith(prefix)]
        if not keys or any(k[len(prefix):].split('.', 1)[0] in BRANCHES for k in keys):
            return
        for k in keys:
            value = state_dict.pop(k)
            for branch in BRANCHES:
                state_dict[f'{prefix}{branch}.{k[len(prefix):]}'] = value

    def init_weights(self) -> None:
        """Without ``init_from``: mmengine's initialisation. With it: load that checkpoint
        strictly (both branches from a plain Stage0 checkpoint) and skip the random/
        pretrained initialisation it would overwrite anyway."""
        if self.init_from is None:
            super().init_weights()
            return
        if '://' not in self.init_from and not osp.isfile(self.init_from):
            raise FileNotFoundError(
                f'model.init_from={self.init_from} not found: Stage1 starts from a Stage0 '
                'checkpoint (train Stage0, or pass --cfg-options model.init_from=PATH)')
        state = _plain_state_dict(_load_checkpoint(self.init_from, map_location='cpu'),
                                  self.init_from)
        try:
            if any(k.split('.', 1)[0] in BRANCHES for k in state):
                self.load_state_dict(state, strict=True)
            else:
                for branch in BRANCHES:
                    getattr(self, branch).load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise RuntimeError(f'init_from={self.init_from} does not match the pose model: '
                               f'{err}') from err
        self._is_init = True
