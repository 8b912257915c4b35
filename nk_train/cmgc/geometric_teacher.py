"""The frozen geometric teacher: a depth model and a surface-normal model run on pose crops.

CMGC compares student keypoints with the teacher's depth and normals. The teacher is expensive
(two Sapiens-sized networks), so it normally runs offline (``precompute/geo_cache.py``) and
Stage1 reads its maps from the cache; the same class also works online.

Input: a batch of crops (B x 3 x H x W, BGR as decoded by OpenCV/mmcv, uint8 or float in
[0, 255]). The teacher applies Sapiens preprocessing (optional BGR->RGB, mean/std) and resizes
to its own input size (1024 x 768 by default, h x w) if needed. Output: depth B x 1 x h x w
and unit normals B x 3 x h x w, float32, at the networks' output resolution.

Loaders (``build_geometric_teacher``):

* ``kind='torchscript'`` / ``'export'``: one file per task, the format of the Sapiens lite
  release (``torch.jit.save`` or ``torch.export.save`` files); each maps a normalised
  B x 3 x H x W batch to B x C x h x w.
* ``kind='module'``: two ``nn.Module``s built from registry configs plus state-dict files.
* ``kind='stand_in'``: ``StandInGeometricTeacher``, a small seeded random network for CPU
  demos and tests. Its maps have no physical meaning.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmpose.registry import MODELS

from ..utils import sha256_file, to_plain

# Sapiens' preprocessing (its lite depth/normal demos): RGB, ImageNet-like mean/std in [0, 255].
SAPIENS_MEAN = (123.5, 116.5, 103.5)
SAPIENS_STD = (58.5, 57.0, 57.5)
SAPIENS_INPUT_SIZE = (1024, 768)  # (h, w)

TEACHER_KINDS = ('torchscript', 'export', 'module', 'stand_in')
_DTYPES = {'float32': torch.float32, 'bfloat16': torch.bfloat16, 'float16': torch.float16}


class GeometricTeacher(nn.Module):
    """Frozen depth + normal teacher with Sapiens preprocessing.

    Always in eval mode with ``requires_grad=False``: ``train()`` from a parent model (mmengine
    loops call it every iteration) does not switch it back to training.
    """

    def __init__(self, depth_model: nn.Module, normal_model: nn.Module,
                 input_size: Sequence[int] = SAPIENS_INPUT_SIZE,
                 mean: Sequence[float] = SAPIENS_MEAN, std: Sequence[float] = SAPIENS_STD,
                 bgr_to_rgb: bool = True, dtype: str = 'float32',
                 description: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        if dtype not in _DTYPES:
            raise ValueError(f'teacher dtype must be one of {sorted(_DTYPES)}, got {dtype!r}')
        if len(input_size) != 2:
            raise ValueError(f'teacher input_size must be (h, w), got {input_size}')
        self.depth_model = depth_model
        self.normal_model = normal_model
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.bgr_to_rgb = bool(bgr_to_rgb)
        self.compute_dtype = _DTYPES[dtype]
        # (x - mean) / std as one multiply-add; BGR->RGB folded into a channel gather.
        std_t = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
        self.register_buffer('scale', 1.0 / std_t, persistent=False)
        self.register_buffer('offset', -torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
                             / std_t, persistent=False)
        self.channel_order = [2, 1, 0] if self.bgr_to_rgb else [0, 1, 2]
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

    @torch.no_grad()
    def forward(self, crops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Depth (B x 1 x h x w) and unit normals (B x 3 x h x w), float32."""
        x = self.preprocess(crops).to(self.compute_dtype)
        depth = self.depth_model(x)
        normal = self.normal_model(x)
        depth, normal = _first_tensor(depth), _first_tensor(normal)
        if depth.ndim != 4 or depth.shape[1] != 1:
            raise ValueError(f'depth model must return B x 1 x h x w, got {tuple(depth.shape)}')
        if normal.ndim != 4 or normal.shape[1] != 3:
            raise ValueError(f'normal model must return B x 3 x h x w, got {tuple(normal.shape)}')
        return depth.float(), unit_vectors(normal.float())


def unit_vectors(n: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Normalise B x 3 x H x W vectors over the channel axis. Written out per channel: on CPU
    ``F.normalize(dim=1)`` is ~12x slower on teacher-sized maps (strided reduction)."""
    norm = torch.sqrt(n[:, 0:1] * n[:, 0:1] + n[:, 1:2] * n[:, 1:2] + n[:, 2:3] * n[:, 2:3])
    return n / norm.clamp_min(eps)


def _first_tensor(out: Any) -> torch.Tensor:
    """Models exported from mmseg-style code may return a tuple/list; take the map."""
    if isinstance(out, (tuple, list)):
        out = out[0]
    if not isinstance(out, torch.Tensor):
        raise TypeError(f'teacher model returned {type(out).__name__}, expected a tensor')
    return out


@MODELS.register_module()
class StandInGeometricNet(nn.Module):
    """STAND-IN network (random weights unless loaded): a few convolutions, the first two
    strided, so its maps come out at a quarter of the input resolution (the cache resamples
    any output resolution). Registered so the ``kind='module'`` loader can be exercised
    without a real depth/normal checkpoint."""

    def __init__(self, out_channels: int, width: int, num_layers: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for i in range(num_layers):
            stride = 2 if i < 2 else 1
            layers += [nn.Conv2d(c_in, width, 3, stride=stride, padding=1), nn.GELU()]
            c_in = width
        self.body = nn.Sequential(*layers)
        self.head = nn.Conv2d(width, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


class StandInGeometricTeacher(nn.Module):
    """STAND-IN teacher: seeded random weights, for CPU demos, tests and benchmarks only.

    It exercises every code path of the real teacher (shapes, preprocessing, cache, checks)
    at a controllable cost (``width``, ``num_layers``); its "depth" and "normals" mean nothing.
    Depth is ``softplus`` of the output (positive, like a distance).
    """

    def __init__(self, seed: int = 0, width: int = 16, num_layers: int = 3) -> None:
        super().__init__()
        gen_state = torch.random.get_rng_state()
        try:
            torch.manual_seed(int(seed))
            self.depth = StandInGeometricNet(1, width, num_layers)
            self.normal = StandInGeometricNet(3, width, num_layers)
        finally:
            torch.random.set_rng_state(gen_state)

    def depth_forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.softplus(self.depth(x)) + 0.5

    def normal_forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.normal(x)


class _Bound(nn.Module):
    """Expose one output of the stand-in as a standalone module."""

    def __init__(self, parent: StandInGeometricTeacher, which: str) -> None:
        super().__init__()
        self.parent_net = parent
        self.which = which

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.parent_net.depth_forward(x) if self.which == 'depth'
                else self.parent_net.normal_forward(x))


def _load_file_model(kind: str, path: Path) -> nn.Module:
    if not path.is_file():
        raise FileNotFoundError(f'geometric teacher {kind} file not found: {path}')
    if kind == 'torchscript':
        return torch.jit.load(str(path), map_location='cpu')
    return torch.export.load(str(path)).module()


def _build_registry_model(spec: Mapping[str, Any], task: str) -> nn.Module:
    """``MODELS.build(spec['model'])`` + the state dict in ``spec['checkpoint']`` (strict)."""
    if 'model' not in spec or 'checkpoint' not in spec:
        raise ValueError(f'teacher.{task} for kind="module" needs model=dict(type=...) and '
                         f'checkpoint=PATH, got keys {sorted(spec)}')
    model = MODELS.build(dict(spec['model']))
    path = Path(spec['checkpoint'])
    if not path.is_file():
        raise FileNotFoundError(f'geometric teacher {task} checkpoint not found: {path}')
    # weights_only stays on; nk_train.compat allow-lists what mmengine checkpoints carry.
    state = torch.load(str(path), map_location='cpu', weights_only=True)
    if isinstance(state, Mapping) and 'state_dict' in state:
        state = state['state_dict']
    model.load_state_dict(state, strict=True)
    return model


def teacher_description(cfg: Mapping[str, Any], hash_files: bool = True) -> dict[str, Any]:
    """What identifies the teacher's outputs (enters the cache fingerprint).

    Checkpoint contents are identified by sha256; paths are not (a moved file is the same
    teacher). With ``hash_files=False`` (or a missing file) the hash is None.
    """
    cfg = dict(cfg)
    kind = cfg.get('kind')
    if kind not in TEACHER_KINDS:
        raise ValueError(f'teacher.kind must be one of {TEACHER_KINDS}, got {kind!r}')
    desc: dict[str, Any] = dict(
        kind=kind,
        input_size=list(cfg.get('input_size', SAPIENS_INPUT_SIZE)),
        mean=list(cfg.get('mean', SAPIENS_MEAN)),
        std=list(cfg.get('std', SAPIENS_STD)),
        bgr_to_rgb=bool(cfg.get('bgr_to_rgb', True)),
        dtype=cfg.get('dtype', 'float32'),
    )
    if kind == 'stand_in':
        desc['arch'] = dict(seed=int(cfg.get('seed', 0)), width=int(cfg.get('width', 16)),
                            num_layers=int(cfg.get('num_layers', 3)))
        return desc
    for task in ('depth', 'normal'):
        if task not in cfg:
            raise ValueError(f'teacher config of kind {kind!r} needs a {task!r} entry')
        spec = cfg[task]
        path = Path(spec if kind in ('torchscript', 'export') else spec['checkpoint'])
        digest = sha256_file(path) if hash_files and path.is_file() else None
        entry: dict[str, Any] = dict(sha256=digest)
        if kind == 'module':
            entry['model'] = to_plain(spec['model'])
        desc[task] = entry
    return desc


def build_geometric_teacher(cfg: Mapping[str, Any], device: str | torch.device = 'cpu'
                            ) -> GeometricTeacher:
    """Build the teacher described by a ``geo_cache.teacher`` config dict."""
    cfg = dict(cfg)
    desc = teacher_description(cfg)
    kind = desc['kind']
    if kind == 'stand_in':
        net = StandInGeometricTeacher(**desc['arch'])
        depth_model, normal_model = _Bound(net, 'depth'), _Bound(net, 'normal')
    elif kind in ('torchscript', 'export'):
        depth_model = _load_file_model(kind, Path(cfg['depth']))
        normal_model = _load_file_model(kind, Path(cfg['normal']))
    else:
        depth_model = _build_registry_model(cfg['depth'], 'depth')
        normal_model = _build_registry_model(cfg['normal'], 'normal')
    dtype = desc['dtype']
    if kind in ('stand_in', 'module') and dtype != 'float32':
        depth_model.to(_DTYPES[dtype])
        normal_model.to(_DTYPES[dtype])
    teacher = GeometricTeacher(depth_model, normal_model, input_size=desc['input_size'],
                               mean=desc['mean'], std=desc['std'],
                               bgr_to_rgb=desc['bgr_to_rgb'], dtype=dtype, description=desc)
    return teacher.to(device)
