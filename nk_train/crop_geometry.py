"""Deterministic crop augmentation: the same view for a (sample id, seed index) pair everywhere.

The geometric cache stores depth/normal maps for K fixed views of every instance, and Stage1
trains on exactly those views. That only works if the view is a pure function of
``(sample_id, k, aug config, global_seed)``: no global RNG, no dependence on worker count,
sampler order or process. We use a counter-based generator seeded by
``SeedSequence([global_seed, sample_id, k])`` and always draw the same number of values, so
changing one probability never shifts the other draws.

Conventions (documented once, used by precompute and training alike):

* ``k == 0`` is the identity view (no flip, shift, scale or rotation). ``val`` uses k=0 only;
  training splits use k in [0, K).
* The crop region follows mmpose's top-down recipe: ``GetBBoxCenterScale`` (padding) ->
  ``RandomBBoxTransform`` (centre += shift * bbox_scale, scale *= s, rotation r) ->
  ``TopdownAffine(use_udp=True)`` (fix the aspect ratio, UDP warp matrix).
* A flip mirrors the finished crop: ``x -> (w - 1) - x`` (mmpose's pixel-centre flip), so the
  rotation is drawn in the unflipped frame. The flip is folded into the 2x3 affine.
* After the transform, ``keypoints`` keep original-image coordinates but are permuted by
  ``flip_indices`` when flipped, so ``transformed_keypoints == geo_affine @ keypoints``
  holds for every joint.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping, Sequence

import cv2
import numpy as np
from scipy.special import ndtr, ndtri

# ``scale_factor`` and ``rotate_factor`` are milder than mmpose's defaults (0.5-1.5, 80 deg):
# the views must stay faithful enough for a depth/normal teacher and an EMA teacher.
AUG_DEFAULTS: dict[str, Any] = dict(
    flip_prob=0.5,
    shift_factor=0.16,
    shift_prob=0.3,
    scale_factor=(0.75, 1.25),
    scale_prob=1.0,
    rotate_factor=30.0,
    rotate_prob=0.6,
)

# Bounds of the standard normal truncated to [-1, 1], as mmpose's RandomBBoxTransform uses.
_TN_LO, _TN_HI = float(ndtr(-1.0)), float(ndtr(1.0))


class DegenerateBBoxError(ValueError):
    """A bounding box that cannot define a crop (non-finite or narrower than the minimum)."""


@dataclass(frozen=True)
class SeededAugConfig:
    """Ranges and probabilities of the seeded crop augmentation (see ``AUG_DEFAULTS``)."""

    flip_prob: float = AUG_DEFAULTS['flip_prob']
    shift_factor: float = AUG_DEFAULTS['shift_factor']
    shift_prob: float = AUG_DEFAULTS['shift_prob']
    scale_factor: tuple[float, float] = AUG_DEFAULTS['scale_factor']
    scale_prob: float = AUG_DEFAULTS['scale_prob']
    rotate_factor: float = AUG_DEFAULTS['rotate_factor']
    rotate_prob: float = AUG_DEFAULTS['rotate_prob']

    def __post_init__(self) -> None:
        for name in ('flip_prob', 'shift_prob', 'scale_prob', 'rotate_prob'):
            value = float(getattr(self, name))
            if not 0.0 <= value <= 1.0:
                raise ValueError(f'aug.{name} must lie in [0, 1], got {value}')
        lo, hi = (float(v) for v in self.scale_factor)
        if not 0.0 < lo <= hi:
            raise ValueError('aug.scale_factor must satisfy 0 < min <= max, got '
                             f'{self.scale_factor}')
        if self.shift_factor < 0 or self.rotate_factor < 0:
            raise ValueError('aug.shift_factor and aug.rotate_factor must be >= 0, got '
                             f'{self.shift_factor}, {self.rotate_factor}')
        object.__setattr__(self, 'scale_factor', (lo, hi))

    @classmethod
    def from_dict(cls, cfg: Mapping[str, Any] | None) -> 'SeededAugConfig':
        """Build from a config dict; unknown keys are an error (a typo must not be ignored)."""
        if cfg is None:
            return cls()
        if isinstance(cfg, SeededAugConfig):
            return cfg
        known = {f.name for f in fields(cls)}
        unknown = set(cfg) - known
        if unknown:
            raise ValueError(f'unknown seeded augmentation keys {sorted(unknown)}; '
                             f'known: {sorted(known)}')
        values = {k: (tuple(float(x) for x in v) if k == 'scale_factor' else float(v))
                  for k, v in cfg.items()}
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d['scale_factor'] = list(d['scale_factor'])
        return d


@dataclass(frozen=True)
class CropGeometry:
    """One view: horizontal flip, scale factor, rotation (degrees), shift (units of bbox size)."""

    flip: bool = False
    scale: float = 1.0
    rotation: float = 0.0
    shift: tuple[float, float] = (0.0, 0.0)

    def to_dict(self) -> dict[str, Any]:
        return dict(flip=self.flip, scale=self.scale, rotation=self.rotation,
                    shift=list(self.shift))


IDENTITY = CropGeometry()


def _truncnorm(u: float) -> float:
    """Standard normal truncated to [-1, 1] by inverting its CDF at uniform ``u``."""
    return float(ndtri(_TN_LO + u * (_TN_HI - _TN_LO)))


def sample_geometry(sample_id: int, k: int, aug: SeededAugConfig | Mapping[str, Any] | None,
                    global_seed: int) -> CropGeometry:
    """The crop geometry of view ``k`` of sample ``sample_id`` (pure; ``k == 0`` = identity)."""
    for name, value in (('sample_id', sample_id), ('k', k), ('global_seed', global_seed)):
        if isinstance(value, bool) or int(value) != value or int(value) < 0:
            raise ValueError(f'{name} must be a non-negative integer, got {value!r}')
    if k == 0:
        return IDENTITY
    aug = SeededAugConfig.from_dict(aug)
    rng = np.random.default_rng(np.random.SeedSequence([int(global_seed), int(sample_id), int(k)]))
    # Always 8 draws in a fixed order: a changed probability never shifts another value.
    u = rng.random(8)
    flip = bool(u[0] < aug.flip_prob)
    if u[1] < aug.shift_prob:
        shift = (_truncnorm(u[4]) * aug.shift_factor, _truncnorm(u[5]) * aug.shift_factor)
    else:
        shift = (0.0, 0.0)
    lo, hi = aug.scale_factor
    scale = (0.5 * (lo + hi) + 0.5 * (hi - lo) * _truncnorm(u[6])) if u[2] < aug.scale_prob else 1.0
    rotation = _truncnorm(u[7]) * aug.rotate_factor if u[3] < aug.rotate_prob else 0.0
    return CropGeometry(flip=flip, scale=float(scale), rotation=float(rotation),
                        shift=(float(shift[0]), float(shift[1])))


def bbox_center_scale(bbox_xyxy: np.ndarray, padding: float) -> tuple[np.ndarray, np.ndarray]:
    """Centre and padded size of an (x1, y1, x2, y2) box, exactly as mmpose's
    ``bbox_xyxy2cs`` computes them (float32), so precompute matches ``GetBBoxCenterScale``."""
    bbox = np.asarray(bbox_xyxy, dtype=np.float32).reshape(4)
    x1, y1, x2, y2 = bbox
    center = np.array([x1 + x2, y1 + y2], dtype=np.float32) * 0.5
    scale = np.array([x2 - x1, y2 - y1], dtype=np.float32) * padding
    return center, scale


@dataclass(frozen=True)
class CropRegion:
    """The augmented crop region in original-image pixels (what ``input_center/scale`` hold)."""

    center: np.ndarray  # (2,) float64
    scale: np.ndarray  # (2,) float64, aspect ratio fixed to the crop's w/h
    rotation: float
    flip: bool


def crop_region(center: Sequence[float], scale: Sequence[float], geometry: CropGeometry,
                input_size: Sequence[int], min_bbox_size: float = 2.0,
                sample: str = '?') -> CropRegion:
    """Apply ``geometry`` to a padded box (centre, size) and fix the aspect ratio to
    ``input_size`` (w, h), as RandomBBoxTransform + TopdownAffine do."""
    c = np.asarray(center, dtype=np.float64).reshape(2)
    s = np.asarray(scale, dtype=np.float64).reshape(2)
    if not (np.all(np.isfinite(c)) and np.all(np.isfinite(s))):
        raise DegenerateBBoxError(f'sample {sample}: non-finite bbox centre {c} / size {s}')
    if np.any(s < min_bbox_size):
        raise DegenerateBBoxError(
            f'sample {sample}: degenerate bbox, padded size {s.tolist()} px is below the minimum '
            f'{min_bbox_size} px (geo_cache.min_bbox_size)')
    c = c + np.asarray(geometry.shift, dtype=np.float64) * s
    s = s * geometry.scale
    w, h = (float(v) for v in input_size)
    aspect = w / h
    if s[0] > s[1] * aspect:
        s = np.array([s[0], s[0] / aspect])
    else:
        s = np.array([s[1] * aspect, s[1]])
    return CropRegion(center=c, scale=s, rotation=float(geometry.rotation), flip=geometry.flip)


def udp_warp_matrix(center: np.ndarray, scale: np.ndarray, rot_deg: float,
                    output_size: Sequence[int]) -> np.ndarray:
    """mmpose's ``get_udp_warp_matrix`` in float64 (mmpose returns float32)."""
    cx, cy = (float(v) for v in center)
    sw, sh = (float(v) for v in scale)
    out_w, out_h = (float(v) for v in output_size)
    r = math.radians(rot_deg)
    cos, sin = math.cos(r), math.sin(r)
    sx, sy = (out_w - 1.0) / sw, (out_h - 1.0) / sh
    return np.array([
        [cos * sx, -sin * sx, sx * (-cx * cos + cy * sin + 0.5 * sw)],
        [sin * sy, cos * sy, sy * (-cx * sin - cy * cos + 0.5 * sh)],
    ], dtype=np.float64)


def region_affine(region: CropRegion, output_size: Sequence[int]) -> np.ndarray:
    """2x3 float64 affine (original image -> crop of ``output_size`` (w, h)), flip included."""
    mat = udp_warp_matrix(region.center, region.scale, region.rotation, output_size)
    if region.flip:
        mat = np.array([[-1.0, 0.0, float(output_size[0]) - 1.0], [0.0, 1.0, 0.0]]) @ \
            np.vstack([mat, [0.0, 0.0, 1.0]])
    return mat


def crop_affine(center: Sequence[float], scale: Sequence[float], geometry: CropGeometry,
                input_size: Sequence[int], output_size: Sequence[int] | None = None,
                min_bbox_size: float = 2.0, sample: str = '?') -> np.ndarray:
    """The 2x3 affine of a view: original image -> crop.

    ``input_size`` (w, h) is the student crop: it fixes the region's aspect ratio.
    ``output_size`` (default ``input_size``) is the resolution the same region is warped to
    (the teacher's input, or a map grid); with UDP this is a pure rescale of the crop affine.
    """
    region = crop_region(center, scale, geometry, input_size, min_bbox_size, sample)
    return region_affine(region, input_size if output_size is None else output_size)


def rescale_affine(affine: np.ndarray, from_size: Sequence[int],
                   to_size: Sequence[int]) -> np.ndarray:
    """Map a crop affine of ``from_size`` (w, h) onto a grid of ``to_size`` under UDP
    (pixel 0 <-> pixel 0, last <-> last): the conversion from crop to heatmap/map pixels."""
    fx = (float(to_size[0]) - 1.0) / (float(from_size[0]) - 1.0)
    fy = (float(to_size[1]) - 1.0) / (float(from_size[1]) - 1.0)
    return np.diag([fx, fy]) @ np.asarray(affine, dtype=np.float64)


def apply_affine(points: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Apply a 2x3 affine to points (..., 2); returns float64."""
    pts = np.asarray(points, dtype=np.float64)
    a = np.asarray(affine, dtype=np.float64)
    return pts @ a[:, :2].T + a[:, 2]


def warp_crop(img: np.ndarray, affine: np.ndarray, output_size: Sequence[int]) -> np.ndarray:
    """Warp an image with the crop affine: the same call as mmpose's TopdownAffine."""
    w, h = (int(v) for v in output_size)
    return cv2.warpAffine(img, np.asarray(affine, dtype=np.float64), (w, h),
                          flags=cv2.INTER_LINEAR)


def crop_inside(image_hw: Sequence[int], affine: np.ndarray, output_size: Sequence[int]
                ) -> np.ndarray:
    """uint8 h x w mask of the crop's pixels that ``warp_crop`` fills from the image alone
    (1), not from the black border outside it (0): the same warp of an all-ones image."""
    ones = np.full((int(image_hw[0]), int(image_hw[1])), 255, np.uint8)
    return (warp_crop(ones, affine, output_size) == 255).astype(np.uint8)
