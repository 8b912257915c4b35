"""The frozen geometric teacher: Sapiens' depth and surface-normal models run on pose crops.

CMGC compares student keypoints with the teacher's depth and normals. The teacher is expensive
(two Sapiens-sized networks), so it normally runs offline (``precompute/geo_cache.py``) and
Stage1 reads its maps from the cache; the same class also works online.

Input: a batch of crops (B x 3 x H x W, BGR as decoded by OpenCV/mmcv, uint8 or float in
[0, 255]). The teacher applies Sapiens' preprocessing (optional BGR->RGB, mean/std), resizes
to its input size (1024 x 768 by default, h x w) and feeds each network the dtype it runs in
(``teacher_files``). Output (``TeacherOutput``, float32, each at its network's resolution:
Sapiens' depth at the input resolution, its normals at half):

* ``depth`` B x 1 x h x w, as the model gives it: Sapiens' is relative (trained on each image's
  foreground depth min-max normalised to [0, 1], larger = farther; background unsupervised);
* ``normal`` B x 3 x h x w, unit vectors in the loss frame (x image right, y image down, z away
  from the camera): ``normal_axes`` says which image direction the model's x, y, z point to
  (Sapiens' depth-to-normal demo: right, down, away, the default), and the teacher flips the
  axes that point the other way. Flip rule: mirroring the image mirrors the normal's x; every
  cached view is the teacher's output on that view's own (flipped, rotated) crop, so no flip is
  ever applied to a map afterwards;
* ``foreground`` B x 1 x h x w in {0, 1} or None, by ``foreground.source``: ``'segmentation'``
  (a third network, Sapiens' body-part segmentation, what Sapiens' own demos mask depth with:
  classes not in ``background_classes``), ``'depth'`` (depth below ``below`` is background:
  Sapiens' depth *targets* mark it -1, but its loss never supervises the background, so use it
  only where the model is known to reproduce that) or ``'none'``.

Loaders (``build_geometric_teacher``): ``kind='torchscript'`` / ``'export'`` (the Sapiens-Lite
files), ``'module'`` (registry configs + state dicts) and ``'stand_in'``
(``stand_in_teacher``: random, for CPU demos; its maps have no meaning).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..utils import sha256_file, to_plain
from .stand_in_teacher import stand_in_networks
from .teacher_files import DTYPES, FILE_KINDS, check_dtype, dtype_name, load_network

# Sapiens' preprocessing (its lite depth/normal demos): RGB, ImageNet-like mean/std in [0, 255].
SAPIENS_MEAN = (123.5, 116.5, 103.5)
SAPIENS_STD = (58.5, 57.0, 57.5)
SAPIENS_INPUT_SIZE = (1024, 768)  # (h, w)

TEACHER_KINDS = (*FILE_KINDS, 'module', 'stand_in')
LOSS_FRAME = ('right', 'down', 'away')
OPPOSITE = {'right': 'left', 'down': 'up', 'away': 'toward'}
FOREGROUND_SOURCES = ('segmentation', 'depth', 'none')
_KEYS = {'kind', 'depth', 'normal', 'segmentation', 'input_size', 'mean', 'std', 'bgr_to_rgb',
         'dtype', 'normal_axes', 'foreground', 'seed', 'width', 'num_layers'}


@dataclass
class TeacherOutput:
    depth: torch.Tensor  # B x 1 x h x w
    normal: torch.Tensor  # B x 3 x h' x w', unit, loss frame
    foreground: torch.Tensor | None  # B x 1 x h'' x w'' in {0, 1}


def normal_axis_signs(axes: Sequence[str]) -> tuple[float, float, float]:
    """+1 / -1 per model axis to bring normals into the loss frame (right, down, away)."""
    axes = tuple(axes)
    if len(axes) != 3 or any(a not in (want, OPPOSITE[want]) for a, want in zip(axes, LOSS_FRAME)):
        raise ValueError(f'teacher.normal_axes must name, for the model\'s x, y and z, one of '
                         f'{[(w, OPPOSITE[w]) for w in LOSS_FRAME]}; got {axes}')
    return tuple(1.0 if a == want else -1.0 for a, want in zip(axes, LOSS_FRAME))


def _foreground_rule(cfg: Mapping[str, Any] | None) -> dict:
    rule = dict(source='none') if cfg is None else dict(cfg)
    if rule.get('source') not in FOREGROUND_SOURCES:
        raise ValueError(f'teacher.foreground.source must be one of {FOREGROUND_SOURCES}, got '
                         f'{rule.get("source")!r}')
    known = {'source', 'below', 'background_classes'}
    if set(rule) - known:
        raise ValueError(f'teacher.foreground: unknown keys {sorted(set(rule) - known)}')
    if rule['source'] == 'depth':
        rule.setdefault('below', 0.0)
    if rule['source'] == 'segmentation':
        rule['background_classes'] = [int(c) for c in rule.get('background_classes', [0])]
    return rule


class GeometricTeacher(nn.Module):
    """Frozen depth + normal (+ segmentation) teacher with Sapiens preprocessing.

    Always in eval mode with ``requires_grad=False``: ``train()`` from a parent model (mmengine
    loops call it every iteration) does not switch it back to training.
    """

    def __init__(self, networks: Mapping[str, nn.Module], dtypes: Mapping[str, torch.dtype],
                 input_size: Sequence[int] = SAPIENS_INPUT_SIZE,
                 mean: Sequence[float] = SAPIENS_MEAN, std: Sequence[float] = SAPIENS_STD,
                 bgr_to_rgb: bool = True, normal_axes: Sequence[str] = LOSS_FRAME,
                 foreground: Mapping[str, Any] | None = None,
                 description: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        if len(input_size) != 2:
            raise ValueError(f'teacher input_size must be (h, w), got {input_size}')
        self.rule = _foreground_rule(foreground)
        if (self.rule['source'] == 'segmentation') != ('segmentation' in networks):
            raise ValueError('teacher: foreground.source="segmentation" and a segmentation '
                             'network go together')
        self.nets = nn.ModuleDict(dict(networks))
        self.dtypes = dict(dtypes)
        self.input_size = (int(input_size[0]), int(input_size[1]))
        std_t = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
        # (x - mean) / std as one multiply-add; BGR->RGB folded into a channel gather.
        self.register_buffer('scale', 1.0 / std_t, persistent=False)
        self.register_buffer('offset', -torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
                             / std_t, persistent=False)
        self.register_buffer('axis_signs', torch.tensor(normal_axis_signs(normal_axes)).view(
            1, 3, 1, 1), persistent=False)
        self.channel_order = [2, 1, 0] if bgr_to_rgb else [0, 1, 2]
        self.description = dict(description or {})
        self.requires_grad_(False)
        self.train()

    def train(self, mode: bool = True) -> 'GeometricTeacher':
        """Stay in eval mode whatever the parent asks (frozen sub-model invariant).

        The flag is set directly: modules loaded with ``torch.export`` refuse ``train()``.
        """
        for module in self.modules():
            module.training = False
        return self

    def preprocess(self, crops: torch.Tensor) -> torch.Tensor:
        """BGR crops (B x 3 x H x W, [0, 255]) -> normalised teacher input (float32)."""
        if crops.ndim != 4 or crops.shape[1] != 3:
            raise ValueError(f'teacher expects B x 3 x H x W crops, got {tuple(crops.shape)}')
        x = crops.to(self.scale.device)[:, self.channel_order].float()
        if tuple(x.shape[-2:]) != self.input_size:
            x = F.interpolate(x, size=self.input_size, mode='bilinear', align_corners=False)
        return x.mul_(self.scale).add_(self.offset)

    def _run(self, task: str, x: torch.Tensor, channels: int | None) -> torch.Tensor:
        out = self.nets[task](x.to(self.dtypes[task]))
        if isinstance(out, (tuple, list)):  # models exported from mmseg-style code
            out = out[0]
        if not isinstance(out, torch.Tensor) or out.ndim != 4 or \
                (channels is not None and out.shape[1] != channels):
            got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            want = f'B x {channels} x h x w' if channels else 'B x C x h x w'
            raise ValueError(f'{task} model must return {want}, got {got}')
        return out.float()

    @torch.no_grad()
    def forward(self, crops: torch.Tensor) -> TeacherOutput:
        x = self.preprocess(crops)
        depth = self._run('depth', x, 1)
        normal = unit_vectors(self._run('normal', x, 3)) * self.axis_signs
        source = self.rule['source']
        if source == 'segmentation':
            labels = self._run('segmentation', x, None).argmax(1, keepdim=True)
            background = torch.tensor(self.rule['background_classes'], device=labels.device)
            foreground = (~torch.isin(labels, background)).float()
        elif source == 'depth':
            foreground = (depth >= self.rule['below']).float()
        else:
            foreground = None
        return TeacherOutput(depth=depth, normal=normal, foreground=foreground)


def unit_vectors(n: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Normalise B x 3 x H x W vectors over the channel axis. Written out per channel: on CPU
    ``F.normalize(dim=1)`` is ~12x slower on teacher-sized maps (strided reduction)."""
    norm = torch.sqrt(n[:, 0:1] * n[:, 0:1] + n[:, 1:2] * n[:, 1:2] + n[:, 2:3] * n[:, 2:3])
    return n / norm.clamp_min(eps)


def _tasks(cfg: Mapping[str, Any]) -> tuple[str, ...]:
    rule = _foreground_rule(cfg.get('foreground'))
    return ('depth', 'normal', 'segmentation') if rule['source'] == 'segmentation' else \
        ('depth', 'normal')


def teacher_description(cfg: Mapping[str, Any], hash_files: bool = True) -> dict[str, Any]:
    """What identifies the teacher's outputs (enters the cache fingerprint).

    Checkpoint contents are identified by sha256; paths are not (a moved file is the same
    teacher). With ``hash_files=False`` (or a missing file) the hash is None.
    """
    cfg = dict(cfg)
    unknown = set(cfg) - _KEYS
    if unknown:
        raise ValueError(f'geo_cache.teacher: unknown keys {sorted(unknown)}; known: '
                         f'{sorted(_KEYS)}')
    kind = cfg.get('kind')
    if kind not in TEACHER_KINDS:
        raise ValueError(f'teacher.kind must be one of {TEACHER_KINDS}, got {kind!r}')
    axes = list(cfg.get('normal_axes', LOSS_FRAME))
    normal_axis_signs(axes)
    if cfg.get('dtype', 'auto') not in ('auto', *DTYPES):
        raise ValueError(f'teacher.dtype must be auto or one of {sorted(DTYPES)}, got '
                         f'{cfg.get("dtype")!r}')
    desc: dict[str, Any] = dict(
        kind=kind,
        input_size=list(cfg.get('input_size', SAPIENS_INPUT_SIZE)),
        mean=list(cfg.get('mean', SAPIENS_MEAN)),
        std=list(cfg.get('std', SAPIENS_STD)),
        bgr_to_rgb=bool(cfg.get('bgr_to_rgb', True)),
        dtype=cfg.get('dtype', 'auto'),
        normal_axes=axes,
        foreground=_foreground_rule(cfg.get('foreground')),
    )
    if kind == 'stand_in':
        desc['arch'] = dict(seed=int(cfg.get('seed', 0)), width=int(cfg.get('width', 16)),
                            num_layers=int(cfg.get('num_layers', 3)),
                            format='relative depth, centred-ellipse foreground, '
                                   'half-resolution normals')
        return desc
    for task in _tasks(cfg):
        if task not in cfg:
            raise ValueError(f'teacher config of kind {kind!r} needs a {task!r} entry')
        spec = cfg[task]
        path = Path(spec if kind in FILE_KINDS else spec['checkpoint'])
        entry: dict[str, Any] = dict(sha256=sha256_file(path) if hash_files and path.is_file()
                                     else None)
        if kind == 'module':
            entry['model'] = to_plain(spec['model'])
        desc[task] = entry
    return desc


def build_geometric_teacher(cfg: Mapping[str, Any], device: str | torch.device = 'cpu'
                            ) -> GeometricTeacher:
    """Build the teacher described by a ``geo_cache.teacher`` config dict."""
    cfg = dict(cfg)
    desc = teacher_description(cfg)
    kind, declared = desc['kind'], desc['dtype']
    networks: dict[str, nn.Module] = {}
    dtypes: dict[str, torch.dtype] = {}
    if kind == 'stand_in':
        networks['depth'], networks['normal'] = stand_in_networks(**{
            k: desc['arch'][k] for k in ('seed', 'width', 'num_layers')})
    for task in _tasks(cfg):
        if kind != 'stand_in':
            networks[task], dtypes[task] = load_network(kind, cfg[task], task)
        if kind in FILE_KINDS:
            check_dtype(declared, dtypes[task], task, cfg[task])
        else:  # a module of ours: the config's dtype casts it
            dtypes[task] = DTYPES['float32' if declared in (None, 'auto') else declared]
            networks[task].to(dtypes[task])
    desc['runs_in'] = {task: dtype_name(d) for task, d in dtypes.items()}
    teacher = GeometricTeacher(networks, dtypes, input_size=desc['input_size'],
                               mean=desc['mean'], std=desc['std'],
                               bgr_to_rgb=desc['bgr_to_rgb'], normal_axes=desc['normal_axes'],
                               foreground=desc['foreground'], description=desc)
    return teacher.to(device)
