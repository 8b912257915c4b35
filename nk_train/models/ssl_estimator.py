"""Stage1 semi-supervised top-down estimator: a student, its EMA Teacher A, and the NK-Sapiens
terms on unlabeled crops.

    L = L_sup + lambda_cons L_cons + lambda_dev L_dev
        + lambda_geo_depth L_geo_depth + lambda_geo_normal L_geo_normal

* ``student``: a ``TopdownPoseEstimator`` built from the Stage0 model config; the only part
  the optimiser updates.
* ``teacher`` (Teacher A): the same architecture, frozen (no gradients, always in eval mode,
  even though the training loop calls ``model.train()`` every iteration), moved towards the
  student by ``TeacherEMAHook``.
* L_sup: the student head's own loss on the labeled crops (branch ``sup``).
* L_cons: the student on each strong view against the teacher on the weak view of the same
  unlabeled crop (``HeatmapConsistencyLoss``). Without a gate the teacher's per-keypoint
  confidence filters it; with ``gate`` (``HybridGate``) only the samples (or keypoints) the
  gate gives to Teacher A enter, with Teacher A's hard pseudo-label (``target='hard'``: a
  Gaussian of the codec's sigma re-rendered at the teacher's peak, what the codec encodes for
  a keypoint at that pixel).
* Flip-averaged pseudo-labels (``teacher_flip``): Teacher A's weak-view heatmaps are the mean
  of its prediction on the view and on its mirror image (flipped back, left and right swapped
  by the skeleton's flip pairs), the flip test its evaluation already uses: a more accurate
  teacher for one more teacher forward pass (off: on the CPU sample it lowered Stage1's val
  AP, PROTOCOL.md §7 round 4).
* Consistency ramp-up (``cons_rampup_iters`` > 0): L_cons's weight grows from almost 0 to
  ``lambda_cons`` over that many iterations along the mean-teacher ramp exp(-5 (1 - t)^2), so
  the student leans on the pseudo-labels only once the labeled loss has moved it; logged as
  ``cons_weight``.
* Keypoint-centred cutout (``kpt_cutout_num`` > 0, ``keypoint_cutout``): before the student
  sees a strong view, patches are blanked around keypoints Teacher A places confidently on
  the weak view, a harder view than random occlusion gives.
* L_dev (``deviation_loss``): Teacher B, the ddp_prior's denoising of the student's own
  strong-view keypoints, pulls those keypoints (gradient to the student only). Under gating it
  applies to Teacher B's samples, otherwise to all unlabeled samples.
* L_geo_depth / L_geo_normal (``CMGCLoss``): the student's strong-view keypoints against the
  geometric teacher's depth/normal maps of the same view (the strong view has the weak view's
  geometry, so the cached (id, k) row applies), read from the cache (``cmgc_source='cache'``)
  or computed in the step (``'online'``). Each keypoint is weighted by Teacher A's confidence
  in it (its heatmap peak, clamped to [0, 1]): where the teacher cannot place a keypoint the
  student's is unreliable too, and a limb's weight is the product of its two ends.

Keypoints for L_dev and CMGC come from the local soft-argmax of the heatmaps
(``soft_argmax``: window radius ``soft_argmax_radius``, inverse temperature
``soft_argmax_beta`` on the peak-normalised heatmap; defaults 3 and 5 recover a Gaussian peak
to 0.05 px), in heatmap pixels, which is also the map grid of the cache.

Every lambda is in ``semi_train_cfg``; a lambda of 0 skips its term (and builds neither the
prior nor the CMGC loss). Logged per iteration: ``num_use_teacherA`` (unlabeled samples whose
L_cons used Teacher A: the gate's choice, or without a gate the samples with a keypoint past
the confidence filter) and ``num_use_teacherB`` (samples whose L_dev used Teacher B), plus
``gate_conf`` / ``gate_kps`` (batch means) under gating and ``dev_px`` (mean student-prior
distance in heatmap pixels, over the keypoints L_dev applies to).

Initialisation from Stage0: ``init_from=<Stage0 checkpoint>`` loads the plain
``TopdownPoseEstimator`` weights strictly into both student and teacher when training
starts (``init_weights``). A plain checkpoint given to mmengine's ``load_from`` is also
accepted: its keys are copied to ``student.*`` and ``teacher.*`` on load.

Validation/test run one branch: ``semi_test_cfg=dict(forward_on='teacher'|'student')``.
"""
from __future__ import annotations

import copy
import math
import os.path as osp
from dataclasses import dataclass
from typing import Optional

import torch
from mmengine.logging import MessageHub
from mmengine.model import BaseModel
from mmengine.runner.checkpoint import _load_checkpoint
from mmpose.models.utils.tta import flip_heatmaps
from mmpose.registry import MODELS
from torch import Tensor

from ..cache.settings import GeoCacheSettings
from ..cmgc.losses import TERMS as CMGC_TERMS
from ..cmgc.online_geo_teacher import OnlineGeoTeacher
from ..data.geo_views import stack_geo_maps, stack_teacher_crops
from ..data.views import STRONG_PREFIX, SUP, WEAK
from ..ddp_prior import LazyPrior, PriorTeacher, deviation_loss, large_corrections
from ..engine.finite_guard import raise_if_non_finite
from ..kps import GateDecision, heatmap_peaks
from ..skeleton import load_skeleton
from .consistency_loss import ConsistencyOutput
from .keypoint_cutout import keypoint_cutout
from .soft_argmax import DEFAULT_BETA, DEFAULT_RADIUS, soft_argmax

BRANCHES = ('student', 'teacher')
CMGC_SOURCES = ('cache', 'online')
TRAIN_DEFAULTS = dict(lambda_cons=1.0, lambda_dev=0.0, dev_min_shift=0.0,
                      lambda_geo_depth=0.0, lambda_geo_normal=0.0, cmgc_source='cache',
                      cons_rampup_iters=0, kpt_cutout_num=0, kpt_cutout_size=0.2, kpt_cutout_conf=0.3,
                      teacher_flip=False, soft_argmax_radius=DEFAULT_RADIUS,
                      soft_argmax_beta=DEFAULT_BETA)


def sigmoid_rampup(iteration: int, length: int) -> float:
    """exp(-5 (1 - t)^2) with t = iteration / length clipped to [0, 1]; 1 when ``length`` is 0
    (the ramp of Laine & Aila's temporal ensembling and of Mean Teacher)."""
    if length <= 0:
        return 1.0
    t = min(max(iteration, 0), length) / length
    return math.exp(-5.0 * (1.0 - t) ** 2)


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
        semi_train_cfg: ``TRAIN_DEFAULTS`` keys: the lambdas (0 skips a term; all 0 skips the
            teacher/strong forward), ``dev_min_shift`` (L_dev only on keypoints the prior
            moves by at least this fraction of the heatmap size; 0 = all), ``cmgc_source``,
            the keypoint cutout (``kpt_cutout_num`` patches per strong view, 0 = off, each
            ``kpt_cutout_size`` of the crop's sides, on keypoints whose teacher peak is >=
            ``kpt_cutout_conf``), ``teacher_flip`` (flip-averaged pseudo-labels) and the
            soft-argmax settings.
        semi_test_cfg: ``forward_on``: the branch used by validation/test/predict.
        data_preprocessor: defaults to ``SSLDataPreprocessor`` around the pose model's one.
        init_from: plain Stage0 (or Stage1) checkpoint loaded strictly at ``init_weights``.
        gate: ``HybridGate`` config, or None (no gating).
        ddp_prior: ``dict(checkpoint=PATH, denoise=dict(...))`` of Teacher B (used when
            ``lambda_dev > 0``).
        cmgc_loss: ``CMGCLoss`` config (used when a geo lambda is > 0).
        geo_cache: the ``geo_cache`` dict; needed by ``cmgc_source='online'`` only.
    """

    train_cfg_keys = frozenset(TRAIN_DEFAULTS)
    test_cfg_keys = frozenset({'forward_on'})

    def __init__(self, pose_model: dict, consistency_loss: dict = dict(
                 type='HeatmapConsistencyLoss'), semi_train_cfg: Optional[dict] = None,
                 semi_test_cfg: Optional[dict] = None, data_preprocessor: Optional[dict] = None,
                 init_from: Optional[str] = None, init_cfg: Optional[dict] = None,
                 gate: Optional[dict] = None, ddp_prior: Optional[dict] = None,
                 cmgc_loss: Optional[dict] = None, geo_cache: Optional[dict] = None) -> None:
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
        self.semi_train_cfg = self._checked(semi_train_cfg, TRAIN_DEFAULTS,
                                            self.train_cfg_keys, 'semi_train_cfg')
        self._build_unsup_terms(pose_model, gate, ddp_prior, cmgc_loss, geo_cache)
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

    def _build_unsup_terms(self, pose_model: dict, gate: Optional[dict],
                           ddp_prior: Optional[dict], cmgc_loss: Optional[dict],
                           geo_cache: Optional[dict]) -> None:
        """Build only what a non-zero lambda needs (a checkpoint that is not used need not
        exist). The ddp_prior and the online geometric teacher are ``FrozenModel``s: frozen
        external models, outside the state dict, the optimiser and the EMA; the model holds one
        ddp_prior, shared by Teacher B and the gate's KPS."""
        source = self.semi_train_cfg['cmgc_source']
        if source not in CMGC_SOURCES:
            raise ValueError(f'semi_train_cfg.cmgc_source must be one of {CMGC_SOURCES}, got '
                             f'{source!r}')
        self.ddp_prior = self._build_prior(pose_model, gate, ddp_prior)
        self.gate = None if gate is None else MODELS.build(self._gate_with_prior(gate,
                                                                                 ddp_prior))
        if self.gate is not None and getattr(self.consistency_loss, 'target', None) != 'hard':
            raise ValueError('with a gate, Teacher A gives hard pseudo-labels: set '
                             "consistency_loss.target='hard'")
        if self.gate is not None and self.ddp_prior is not None:
            self.gate.kps.share_prior(self.ddp_prior)
        self.prior_teacher = (PriorTeacher(self.ddp_prior, ddp_prior.get('denoise'))
                              if self.lambda_dev > 0 else None)
        self.cmgc_loss = None
        online = None
        if self.cmgc_enabled:
            if cmgc_loss is None:
                raise ValueError('a geo lambda > 0 needs cmgc_loss=dict(type=\'CMGCLoss\', ...)')
            self.cmgc_loss = MODELS.build(cmgc_loss)
            if source == 'online':
                if geo_cache is None:
                    raise ValueError("cmgc_source='online' needs geo_cache=<the geo_cache dict>")
                settings = GeoCacheSettings.from_config(geo_cache)
                online = OnlineGeoTeacher(settings.teacher_files_resolved(), settings.map_size)
        self.online_geo_teacher = online

    def _build_prior(self, pose_model: dict, gate: Optional[dict],
                     ddp_prior: Optional[dict]) -> Optional[LazyPrior]:
        """The model's one ddp_prior (read on first use), or None when neither Teacher B
        (``lambda_dev > 0``) nor the gate's KPS prior term uses ``model.ddp_prior``."""
        if not (self.lambda_dev > 0 or self._gate_uses_model_prior(gate)):
            return None
        if not ddp_prior or 'checkpoint' not in ddp_prior:
            if self._gate_uses_model_prior(gate):
                raise ValueError("the gate's KPS weighs the ddp_prior term: set "
                                 'model.ddp_prior=dict(checkpoint=PATH) or gate.kps.prior')
            raise ValueError('lambda_dev > 0 needs ddp_prior=dict(checkpoint=PATH, ...)')
        return LazyPrior(ddp_prior['checkpoint'], self.keypoint_names(pose_model),
                         'model.ddp_prior')

    @staticmethod
    def _gate_uses_model_prior(gate: Optional[dict]) -> bool:
        """Whether the gate's KPS weighs the ddp_prior term without naming a checkpoint (then
        it uses ``model.ddp_prior``'s: one checkpoint path to override, not two)."""
        kps = (gate or {}).get('kps') or {}
        return (kps.get('weights') or {}).get('prior', 0) > 0 and not kps.get('prior')

    @classmethod
    def _gate_with_prior(cls, gate: dict, ddp_prior: Optional[dict]) -> dict:
        """The gate config, its KPS given ``model.ddp_prior``'s checkpoint if it uses it (the
        built KPS then takes the model's instance, ``share_prior``)."""
        if not cls._gate_uses_model_prior(gate):
            return gate
        kps = gate['kps']
        return {**gate, 'kps': {**kps, 'prior': dict(checkpoint=ddp_prior['checkpoint'])}}

    def load_training_inputs(self) -> None:
        """Read the files only training needs (they are otherwise read on first use): the
        ddp_prior (once, however many terms use it), a prior of the gate's own and the online
        geometric teacher."""
        if self.ddp_prior is not None:
            self.ddp_prior.get()
        if self.gate is not None:
            self.gate.kps.prior  # noqa: B018 (loads it; the shared one is loaded already)
        if self.online_geo_teacher is not None:
            self.online_geo_teacher.teacher  # noqa: B018

    @staticmethod
    def keypoint_names(pose_model: dict) -> tuple[str, ...]:
        """The keypoint set of the dataset_info file (the one every NK component uses)."""
        names = load_skeleton().keypoint_names
        if int(pose_model['head']['out_channels']) != len(names):
            raise ValueError(f"pose_model.head.out_channels={pose_model['head']['out_channels']} "
                             f'but the keypoint set has {len(names)} keypoints')
        return names

    @property
    def lambda_cons(self) -> float:
        return float(self.semi_train_cfg['lambda_cons'])

    def cons_weight(self) -> float:
        """L_cons's weight at this iteration: ``lambda_cons`` times the ramp-up, if any (the
        iteration is the one mmengine's RuntimeInfoHook records before each training step)."""
        length = int(self.semi_train_cfg['cons_rampup_iters'])
        if length <= 0:
            return self.lambda_cons
        it = MessageHub.get_current_instance().get_info('iter')
        if it is None:
            raise RuntimeError('semi_train_cfg.cons_rampup_iters needs the training iteration, '
                               "which mmengine's RuntimeInfoHook records in the MessageHub; "
                               'none is recorded (a step outside a Runner?)')
        return self.lambda_cons * sigmoid_rampup(int(it), length)

    @property
    def lambda_dev(self) -> float:
        return float(self.semi_train_cfg['lambda_dev'])

    @property
    def lambda_geo(self) -> tuple[float, float]:
        return (float(self.semi_train_cfg['lambda_geo_depth']),
                float(self.semi_train_cfg['lambda_geo_normal']))

    @property
    def cmgc_enabled(self) -> bool:
        return any(v > 0 for v in self.lambda_geo)

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
                teacher_heatmaps = self.teacher_heatmaps(batch.weak_inputs)
            strong = self.heatmaps(self.student, torch.cat(
                [self.cutout(x, teacher_heatmaps) for x in batch.strong_inputs]))
            # NaN heatmaps would become NaN keypoints, which crash grid_sample on CPU (CMGC)
            self._check_finite(dict(teacher_heatmaps=teacher_heatmaps, student_heatmaps=strong),
                               data_samples)
            student_heatmaps = list(strong.split(batch.weak_inputs.shape[0]))
            losses.update(self.unsup_losses(batch, teacher_heatmaps, student_heatmaps))
        self._check_finite(losses, data_samples)
        return losses

    @staticmethod
    def _check_finite(values: dict, data_samples: dict) -> None:
        """``NonFiniteLossError`` naming the iteration, terms and samples (before backward)."""
        it = MessageHub.get_current_instance().get_info('iter')
        raise_if_non_finite(values, 'Stage1 step' if it is None else f'iteration {it + 1}',
                            data_samples)

    def loss_sup(self, inputs: Tensor, data_samples: list) -> dict:
        """L_sup: the student head's loss on labeled crops; ``loss_kpt`` is logged as
        ``loss_sup``, other head outputs get a ``sup_`` prefix."""
        out = self.student.loss(inputs, data_samples)
        if isinstance(out, tuple):  # Sapiens' pose fork returns (losses, predictions)
            out = out[0]
        return {('loss_sup' if k == 'loss_kpt' else f'sup_{k}'): v for k, v in out.items()}

    def unsup_enabled(self) -> bool:
        """Whether any unlabeled term needs the teacher/strong forward passes."""
        return self.lambda_cons > 0 or self.lambda_dev > 0 or self.cmgc_enabled

    def teacher_heatmaps(self, weak_inputs: Tensor) -> Tensor:
        """Teacher A's pseudo-label heatmaps of the weak views: as they are, or with
        ``teacher_flip`` averaged with the mirror image's (one forward pass of both), flipped
        back as the teacher's own flip test does (its head's ``shift_heatmap``)."""
        if not self.semi_train_cfg['teacher_flip']:
            return self.heatmaps(self.teacher, weak_inputs)
        plain, mirrored = self.heatmaps(
            self.teacher, torch.cat([weak_inputs, weak_inputs.flip(-1)])).chunk(2)
        test_cfg = getattr(self.teacher.head, 'test_cfg', None) or {}
        return 0.5 * (plain + flip_heatmaps(
            mirrored, flip_indices=list(load_skeleton().flip_indices), flip_mode='heatmap',
            shift_heatmap=bool(test_cfg.get('shift_heatmap', False))))

    def cutout(self, strong_inputs: Tensor, teacher_heatmaps: Tensor) -> Tensor:
        """One strong view with its keypoint-centred patches (``kpt_cutout_*``; a fresh
        draw per view; ``kpt_cutout_num`` 0 = off)."""
        cfg = self.semi_train_cfg
        return keypoint_cutout(strong_inputs, teacher_heatmaps, int(cfg['kpt_cutout_num']),
                               float(cfg['kpt_cutout_size']), float(cfg['kpt_cutout_conf']))

    def decode(self, heatmaps: Tensor) -> Tensor:
        """Differentiable keypoints (B, K, 2) in heatmap pixels (local soft-argmax)."""
        return soft_argmax(heatmaps, radius=int(self.semi_train_cfg['soft_argmax_radius']),
                           beta=float(self.semi_train_cfg['soft_argmax_beta']))

    def gate_decision(self, teacher_heatmaps: Tensor) -> GateDecision:
        """The Hybrid gate on Teacher A's weak-view heatmaps and decoded keypoints."""
        if self.gate is None:
            raise RuntimeError('this model has no gate (model.gate=None)')
        return self.gate(teacher_heatmaps, self.decode(teacher_heatmaps))

    def unsup_losses(self, batch: UnlabeledBatch, teacher_heatmaps: Tensor,
                     student_heatmaps: list[Tensor]) -> dict:
        """L_cons, L_dev and CMGC on the unlabeled crops, and the Teacher A/B counts.

        ``teacher_heatmaps``: Teacher A on the weak views (B, K, H, W), no gradient.
        ``student_heatmaps``: the student on each strong view, same shape, with gradient.
        """
        losses: dict = {}
        device = teacher_heatmaps.device
        b, k = teacher_heatmaps.shape[:2]
        teacher_a = teacher_b = None  # B x K bool: where each teacher's target applies
        if self.gate is not None:
            decision = self.gate_decision(teacher_heatmaps)
            use_a = decision.use_teacher_a
            teacher_a = use_a if use_a.dim() == 2 else use_a[:, None].expand(b, k)
            teacher_b = ~teacher_a
            losses['gate_conf'] = decision.conf.mean()
            losses['gate_kps'] = decision.kps.mean()
        num_a = num_b = 0
        if self.lambda_cons > 0:
            outs: list[ConsistencyOutput] = [self.consistency_loss(s, teacher_heatmaps,
                                                                   keep=teacher_a)
                                             for s in student_heatmaps]
            weight = self.cons_weight()
            losses['loss_cons'] = weight * sum(o.loss for o in outs) / len(outs)
            if self.semi_train_cfg['cons_rampup_iters'] > 0:
                losses['cons_weight'] = torch.tensor(weight, device=device)
            losses['cons_keep_ratio'] = outs[0].keep.float().mean()
            losses['cons_teacher_conf'] = outs[0].confidence.mean()
            num_a = int(outs[0].keep.any(-1).sum())
        coords = ([self.decode(s) for s in student_heatmaps]
                  if self.lambda_dev > 0 or self.cmgc_enabled else [])
        if self.lambda_dev > 0:
            weights = (torch.ones(b, k, device=device) if teacher_b is None
                       else teacher_b.float())
            size = (teacher_heatmaps.shape[-1], teacher_heatmaps.shape[-2])
            dev, dist, used = [], [], torch.zeros(b, dtype=torch.bool, device=device)
            for y in coords:
                y_hat = self.prior_teacher(y)
                w = weights * large_corrections(y, y_hat, size,
                                                float(self.semi_train_cfg['dev_min_shift']))
                dev.append(deviation_loss(y, y_hat, w, size))
                dist.append(((y.detach() - y_hat).norm(dim=-1) * w).sum()
                            / w.sum().clamp_min(1.0))
                used |= (w > 0).any(-1)
            losses['loss_dev'] = self.lambda_dev * sum(dev) / len(dev)
            losses['dev_px'] = sum(dist) / len(dist)
            num_b = int(used.sum())
        if self.cmgc_enabled:
            losses.update(self.cmgc_losses(batch, teacher_heatmaps, coords))
        losses['num_use_teacherA'] = torch.tensor(float(num_a), device=device)
        losses['num_use_teacherB'] = torch.tensor(float(num_b), device=device)
        return losses

    def geo_maps(self, batch: UnlabeledBatch, device: torch.device
                 ) -> tuple[Tensor, Tensor, Tensor]:
        """Depth, normals and validity of the weak views' (id, k) rows: cached or computed
        online."""
        if self.semi_train_cfg['cmgc_source'] == 'cache':
            return stack_geo_maps(batch.weak_samples, device)
        return self.online_geo_teacher(*stack_teacher_crops(batch.weak_samples, device))

    def cmgc_losses(self, batch: UnlabeledBatch, teacher_heatmaps: Tensor,
                    coords: list[Tensor]) -> dict:
        """Lambda-weighted L_geo_depth / L_geo_normal averaged over the strong views."""
        depth, normal, valid = self.geo_maps(batch, teacher_heatmaps.device)
        if depth.shape[-2:] != teacher_heatmaps.shape[-2:]:
            raise ValueError(f'CMGC: geometric maps are {tuple(depth.shape[-2:])} (h, w) but the '
                             f'heatmaps {tuple(teacher_heatmaps.shape[-2:])}: set '
                             'geo_cache.map_size to the heatmap size')
        weights = heatmap_peaks(teacher_heatmaps.detach()).clamp(0, 1)
        lambdas = {name: lam for name, lam in zip(CMGC_TERMS, self.lambda_geo) if lam > 0}
        outs = [self.cmgc_loss(y, weights, depth, normal, valid, terms=tuple(lambdas))
                for y in coords]
        losses = {name: lam * sum(o[name] for o in outs) / len(outs)
                  for name, lam in lambdas.items()}
        losses['geo_depth_ratio'] = sum(o['geo_depth_ratio'] for o in outs) / len(outs)
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
        """Called by mmengine when training starts (never for test or export). Without
        ``init_from``: mmengine's initialisation. With it: load that checkpoint strictly (both
        branches from a plain Stage0 checkpoint) and skip the random/pretrained initialisation
        it would overwrite anyway. Then load the training-only inputs (the ddp_prior of
        Teacher B and of the gate's KPS), so a missing file fails before the first iteration
        while evaluating a checkpoint needs none of them."""
        self.load_training_inputs()
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
