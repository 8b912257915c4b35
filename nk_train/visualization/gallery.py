"""The pseudo-label gallery: unlabeled crops in groups (Teacher A accepted, rejected, lowest
KPS), each with Teacher A's pose, Teacher B's pose and the diagnostic label, and the numbers
the gate and the report judge it by (conf, KPS, OKS of A and B) in its caption."""
from __future__ import annotations

from typing import Sequence

from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from .drawing import (REFERENCE_COLOR, TEACHER_A_COLOR, TEACHER_B_COLOR, PoseStyle,
                      display_crop, draw_pose, new_figure, read_image, show_image, to_display)
from .pseudo_labels import (GROUP_ACCEPTED, GROUP_REJECTED, GROUP_WORST_KPS, PseudoLabel,
                            gallery_groups)

TEACHER_A = PoseStyle("Teacher A (EMA teacher's pseudo-label)", TEACHER_A_COLOR, zorder=3)
TEACHER_B = PoseStyle("Teacher B (ddp_prior's correction of the student)", TEACHER_B_COLOR,
                      zorder=4)
DIAGNOSTIC = PoseStyle('diagnostic label (reference only, never trained on)', REFERENCE_COLOR,
                       linestyle='--', marker_size=4.0, zorder=6)
CELL_IN = 1.9  # width of one crop, inches
DISPLAY_WIDTH = 192  # crop pixels across a cell


def sample_label(sample_id: int) -> str:
    """The axes label of a sample's cell (lets callers and tests find it)."""
    return f'sample {sample_id}'


def gallery_figure(labels: list[PseudoLabel], edges: Sequence[tuple[int, int]],
                   per_group: int = 6, title: str = '') -> Figure:
    """The gallery of ``labels`` (all crops of one checkpoint's pool), ``per_group`` per row."""
    if not labels:
        raise ValueError('gallery: no pseudo-labels to draw')
    groups = gallery_groups(labels, per_group)
    n_acc = sum(p.accepted for p in labels)
    totals = {GROUP_ACCEPTED: n_acc, GROUP_REJECTED: len(labels) - n_acc,
              GROUP_WORST_KPS: len(labels)}
    w, h = labels[0].input_size
    display = (DISPLAY_WIDTH, round(DISPLAY_WIDTH * h / w))
    header_h, cell_h, empty_h = 0.9, CELL_IN * display[1] / display[0] + 0.75, 0.6
    heights = [cell_h if chosen else empty_h for chosen in groups.values()]
    fig = new_figure(CELL_IN * per_group + 0.2, header_h + sum(heights))
    header, *rows = fig.subfigures(len(groups) + 1, 1, height_ratios=[header_h] + heights)
    header.suptitle(f'{title}\n{len(labels)} crops (identity view), {n_acc} accepted by the '
                    'gate; accepted / rejected rows are spread over their OKS range, best first',
                    fontsize=10, y=0.97)
    handles = [Line2D([], [], color=s.color, ls=s.linestyle, marker='o', mec='black', mew=0.5,
                      label=s.label) for s in (TEACHER_A, TEACHER_B, DIAGNOSTIC)]
    header.legend(handles=handles, loc='lower center', ncol=3, fontsize=8, frameon=False)
    for sub, (name, chosen) in zip(rows, groups.items()):
        sub.suptitle(f'{name}: {len(chosen)} of {totals[name]}' if chosen else
                     f'{name}: no sample in this group', fontsize=10, fontweight='bold',
                     x=0.01, ha='left', y=0.995 if chosen else 0.8)
        if not chosen:
            continue
        sub.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=1.0 - 0.72 / cell_h,
                            wspace=0.05)
        axes = sub.subplots(1, per_group, squeeze=False)[0]
        for ax in axes:
            ax.set_axis_off()
        for ax, p in zip(axes, chosen):
            _draw_cell(ax, p, edges, display)
    return fig


def _draw_cell(ax, p: PseudoLabel, edges, display: tuple[int, int]) -> None:
    rgb, shown = display_crop(read_image(p.img_path), p.affine, p.input_size, display)
    ax.set_axis_on()
    show_image(ax, rgb)
    ax.set_label(sample_label(p.sample_id))
    draw_pose(ax, to_display(p.teacher_a, shown), None, edges, TEACHER_A)
    draw_pose(ax, to_display(p.teacher_b, shown), None, edges, TEACHER_B)
    draw_pose(ax, to_display(p.diagnostic, shown), p.diagnostic[:, 2] > 0, edges, DIAGNOSTIC)
    verdict = 'accepted' if p.accepted else 'rejected'
    ax.set_title(f'#{p.sample_id} {verdict}\nconf {p.conf:.2f}  KPS {p.kps:.2f}\n'
                 f'OKS A {p.oks_a:.2f}  B {p.oks_b:.2f}', fontsize=7.5, pad=2)
