"""What every picture shares: the crop a model saw, poses drawn on it, and saving.

Figures are plain ``matplotlib.figure.Figure`` objects rendered by the Agg canvas: no pyplot,
no global backend, so the package works in headless jobs and DataLoader-free scripts alike.
Crops are cut from the original image with the crop affine the data pipeline used
(``nk_train.crop_geometry``), rescaled under UDP to a display size, so a keypoint drawn at
``apply_affine(xy_image, display_affine)`` sits on the pixel the model saw it on.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..crop_geometry import apply_affine, rescale_affine, warp_crop

# Okabe-Ito colours (distinguishable with the common colour-vision deficiencies).
TEACHER_A_COLOR = '#D55E00'  # vermillion
TEACHER_B_COLOR = '#56B4E9'  # sky blue
REFERENCE_COLOR = '#F0E442'  # yellow: diagnostic / annotated labels, drawn on top
DPI = 100


@dataclass(frozen=True)
class PoseStyle:
    """How one pose source is drawn (the legend entry uses ``label``)."""

    label: str
    color: str
    linestyle: str = '-'
    marker_size: float = 5.0  # points
    zorder: int = 3


def read_image(path: str | Path):
    """The image as the data pipeline decodes it (BGR uint8), or an error naming the file."""
    from ..cache.images import read_image as decode  # refuses truncated files too

    try:
        return decode(str(path))
    except (OSError, ValueError) as err:
        raise ValueError(f'{path}: {err}') from err


def display_crop(img_bgr: np.ndarray, affine: np.ndarray, input_size: Sequence[int],
                 display_size: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """``(rgb, display_affine)``: the crop of ``affine`` (image -> ``input_size`` crop) warped
    at ``display_size`` (same region, UDP rescale) and the image -> display affine."""
    shown = rescale_affine(affine, input_size, display_size)
    return warp_crop(img_bgr, shown, display_size)[..., ::-1], shown


def to_display(points_xy: np.ndarray, display_affine: np.ndarray) -> np.ndarray:
    """Original-image points (K x 2) in display-crop pixels."""
    return apply_affine(np.asarray(points_xy, dtype=np.float64)[:, :2], display_affine)


def draw_pose(ax: Axes, xy: np.ndarray, visible: np.ndarray | None,
              edges: Sequence[tuple[int, int]], style: PoseStyle) -> None:
    """Limbs (both ends visible) and keypoint markers of one pose, in data coordinates."""
    xy = np.asarray(xy, dtype=np.float64)
    vis = np.ones(len(xy), bool) if visible is None else np.asarray(visible, bool)
    for i, j in edges:
        if vis[i] and vis[j]:
            ax.plot(xy[[i, j], 0], xy[[i, j], 1], color=style.color, lw=1.4,
                    ls=style.linestyle, alpha=0.9, zorder=style.zorder, solid_capstyle='round')
    ax.plot(xy[vis, 0], xy[vis, 1], ls='none', marker='o', ms=style.marker_size,
            mfc=style.color, mec='black', mew=0.5, zorder=style.zorder + 0.5)


def show_image(ax: Axes, rgb: np.ndarray) -> None:
    """An image in pixel coordinates (pixel centres at integers, y down), no axes."""
    ax.imshow(rgb, interpolation='nearest')
    ax.set_xlim(-0.5, rgb.shape[1] - 0.5)
    ax.set_ylim(rgb.shape[0] - 0.5, -0.5)
    ax.set_xticks([])
    ax.set_yticks([])


def new_figure(width_in: float, height_in: float) -> Figure:
    fig = Figure(figsize=(width_in, height_in), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def save(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as PNG (parent folders created) at the figure's own dpi."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=fig.dpi)
    return path
