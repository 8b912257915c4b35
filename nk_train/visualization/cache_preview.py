"""Cache preview: for a few cached rows, the crop beside its cached depth (colour map) and
normals (RGB-encoded), with the keypoints drawn on all three, so a crop and maps that do not
line up are seen at once.

Rows are read through ``GeoCacheReader`` (fingerprint checked against the config, as training
does); the crop is recomputed from the image with the cache's own geometry
(``sample_geometry`` -> ``crop_affine``) and must reproduce the stored affine. Maps sit on
the UDP grid of the crop (map pixel u at crop pixel u (w-1)/(mw-1)), and are drawn on that
grid. The cache's validity mask (the teacher's foreground inside the image) greys out what
the CMGC losses ignore.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..cmgc.cache_inputs import split_fingerprint_inputs
from ..cache.reader import GeoCacheMismatchError, GeoCacheReader
from ..cache.settings import GeoCacheSettings
from ..crop_geometry import CropGeometry, bbox_center_scale, crop_affine, sample_geometry
from .drawing import (REFERENCE_COLOR, PoseStyle, display_crop, draw_pose, new_figure,
                      read_image, show_image, to_display)

DISPLAY_WIDTH = 192
PANEL_IN = 1.9
AFFINE_ATOL = 1e-6  # LoadGeoCacheMaps' default tolerance
DEPTH_CMAP = 'bone'  # no yellow in it: the keypoints stay visible
MASKED_GREY = '0.5'  # where the validity mask hides the maps


@dataclass(frozen=True)
class CachedView:
    """One cached row, ready to draw (crop and keypoints in display pixels)."""

    sample_id: int
    k: int
    img_path: str
    geometry: CropGeometry
    crop: np.ndarray  # display h x w x 3 RGB
    depth: np.ndarray  # mh x mw
    normal: np.ndarray  # 3 x mh x mw, unit
    valid: np.ndarray  # mh x mw bool: the teacher's foreground inside the image
    keypoints: np.ndarray | None  # K x 3 (display x, y, visibility)

    def map_extent(self) -> tuple[float, float, float, float]:
        """imshow extent putting map pixel centres where UDP puts them in the display crop."""
        (mh, mw), (h, w) = self.depth.shape, self.crop.shape[:2]
        fx, fy = (w - 1) / (mw - 1), (h - 1) / (mh - 1)
        return (-0.5 * fx, (mw - 0.5) * fx, (mh - 0.5) * fy, -0.5 * fy)


def load_keypoints(ann_file: str | Path) -> dict[int, np.ndarray]:
    """Annotation id -> K x 3 keypoints of a COCO keypoint file."""
    data = json.loads(Path(ann_file).read_text())
    return {int(a['id']): np.asarray(a['keypoints'], dtype=np.float64).reshape(-1, 3)
            for a in data['annotations'] if 'keypoints' in a}


def load_cached_views(geo_cache: Mapping[str, Any], split: str,
                      positions: Sequence[int], views: Sequence[int],
                      indices: Sequence[int] | int | None = None,
                      keypoint_file: str | Path | None = None) -> list[CachedView]:
    """The rows (instance position, view k) of a split cache built with ``indices``."""
    settings = GeoCacheSettings.from_config(geo_cache)
    inputs, unverifiable, instances = split_fingerprint_inputs(settings, split, indices)
    split_dir = settings.split_dir(split)
    reader = GeoCacheReader(split_dir, inputs, instances, unverifiable)
    keypoints = load_keypoints(keypoint_file) if keypoint_file is not None else {}
    w, h = settings.input_size
    display = (DISPLAY_WIDTH, round(DISPLAY_WIDTH * h / w))
    out = []
    for pos in positions:
        if not 0 <= pos < len(instances):
            raise IndexError(f'instance position {pos} outside the {len(instances)} instances '
                             f'of {split_dir}')
        inst = instances.instances[pos]
        img = read_image(inst.img_path)
        center, scale = bbox_center_scale(inst.bbox_xyxy, settings.bbox_padding)
        where = f'sample {inst.sample_id} ({inst.img_path})'
        kp = keypoints.get(inst.sample_id)
        if keypoint_file is not None and kp is None:
            raise KeyError(f'{where} has no keypoints in {keypoint_file}')
        for k in views:
            maps = reader.read(inst.sample_id, k)
            geometry = sample_geometry(inst.sample_id, k, settings.aug, settings.global_seed)
            affine = crop_affine(center, scale, geometry, settings.input_size,
                                 min_bbox_size=settings.min_bbox_size, sample=where)
            if not np.allclose(maps.affine, affine, rtol=0.0, atol=AFFINE_ATOL):
                raise GeoCacheMismatchError(
                    f'{where} view {k}: the cached affine {maps.affine.tolist()} differs from '
                    f'the one its geometry gives now {affine.tolist()} ({split_dir})')
            crop, shown = display_crop(img, affine, settings.input_size, display)
            out.append(CachedView(
                sample_id=inst.sample_id, k=k, img_path=inst.img_path, geometry=geometry,
                crop=crop, depth=maps.depth[0], normal=maps.normal,
                valid=maps.valid[0] > 0.5,
                keypoints=None if kp is None else np.column_stack([to_display(kp, shown),
                                                                    kp[:, 2]])))
    return out


def cache_preview_figure(views: list[CachedView], edges: Sequence[tuple[int, int]],
                         title: str, keypoint_label: str, per_line: int = 2) -> Figure:
    """Crop | depth | normals for each view, ``per_line`` views side by side."""
    if not views:
        raise ValueError('cache preview: no cached row to draw')
    style = PoseStyle(keypoint_label, REFERENCE_COLOR, marker_size=3.5)
    nrows = -(-len(views) // per_line)
    h, w = views[0].crop.shape[:2]
    cell_h = PANEL_IN * h / w + 0.45
    fig = new_figure(PANEL_IN * 3 * per_line + 0.4, cell_h * nrows + 1.1)
    fig.suptitle(f'{title}\ngrey: outside the validity mask (teacher background or crop '
                 'border: ignored by CMGC)', fontsize=9, y=0.995)
    if any(v.keypoints is not None for v in views):
        fig.legend(handles=[Line2D([], [], color=style.color, marker='o', mec='black', mew=0.5,
                                   label=keypoint_label)],
                   loc='upper center', fontsize=8, frameon=False,
                   bbox_to_anchor=(0.5, 1 - 0.62 / fig.get_figheight()))
    axes = fig.subplots(nrows, 3 * per_line, squeeze=False)
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=1 - 1.05 / fig.get_figheight(),
                        wspace=0.04, hspace=0.16)
    for ax in axes.ravel():
        ax.set_axis_off()
    for i, v in enumerate(views):
        a_crop, a_depth, a_normal = axes[i // per_line, 3 * (i % per_line):3 * (i % per_line) + 3]
        g = v.geometry
        show_image(a_crop, v.crop)
        a_crop.set_axis_on()
        a_crop.set_title(f'#{v.sample_id} k={v.k}: {"flip, " if g.flip else ""}'
                         f'scale {g.scale:.2f}, rot {g.rotation:.0f}°', fontsize=7.5)
        depth = np.ma.masked_where(~v.valid, v.depth)
        lo, hi = float(depth.min()), float(depth.max())
        a_depth.imshow(depth, cmap=DEPTH_CMAP, vmin=lo, vmax=hi, extent=v.map_extent(),
                       interpolation='nearest')
        a_depth.set_facecolor(MASKED_GREY)
        a_depth.set_title(f'depth, colours span {lo:.2f}..{hi:.2f}', fontsize=7.5)
        rgb = np.clip((v.normal.transpose(1, 2, 0) + 1.0) / 2.0, 0.0, 1.0)
        rgb = np.where(v.valid[..., None], rgb, float(MASKED_GREY))
        a_normal.imshow(rgb, extent=v.map_extent(), interpolation='nearest')
        a_normal.set_title('normals, RGB = (n + 1) / 2', fontsize=7.5)
        for ax in (a_depth, a_normal):
            ax.set_axis_on()
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlim(-0.5, w - 0.5)
            ax.set_ylim(h - 0.5, -0.5)
        for ax in (a_crop, a_depth, a_normal):
            ax.set_label(f'sample {v.sample_id} k {v.k}')
            if v.keypoints is not None:
                draw_pose(ax, v.keypoints[:, :2], v.keypoints[:, 2] > 0, edges, style)
    return fig
