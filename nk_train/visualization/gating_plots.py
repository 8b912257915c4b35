"""Why the gate accepts or rejects: the unlabeled pool in the gate's (conf, KPS) plane
coloured by how good Teacher A's pseudo-label really is (OKS against the diagnostic labels),
with the two thresholds; and the OKS distributions of the accepted and rejected samples
(and of Teacher B on the rejected ones, the samples it is meant to rescue)."""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from .drawing import TEACHER_A_COLOR, TEACHER_B_COLOR, new_figure
from .pseudo_labels import PseudoLabel

OKS_BINS = np.linspace(0.0, 1.0, 21)


def gating_figure(labels: list[PseudoLabel], thr_conf: float, thr_kps: float,
                  level: str = 'sample', title: str = '') -> Figure:
    """Scatter (conf vs KPS, colour = OKS of Teacher A) and the OKS histograms."""
    if not labels:
        raise ValueError('gating plots: no pseudo-labels to draw')
    conf = np.array([p.conf for p in labels])
    kps = np.array([p.kps for p in labels])
    oks_a = np.array([p.oks_a for p in labels])
    oks_b = np.array([p.oks_b for p in labels])
    acc = np.array([p.accepted for p in labels])

    fig = new_figure(12.5, 5.2)
    fig.suptitle(title, fontsize=10)
    left, right = fig.subplots(1, 2, gridspec_kw=dict(width_ratios=[1.15, 1.0]))
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.11, top=0.86, wspace=0.22)

    left.add_patch(Rectangle((thr_conf, thr_kps), 1.02 - thr_conf, 1.02 - thr_kps,
                             color='0.88', zorder=0))
    dots = left.scatter(conf, kps, c=oks_a, cmap='viridis', vmin=0.0, vmax=1.0, s=18,
                        edgecolors=np.where(acc, 'black', 'none'), linewidths=0.6, zorder=2)
    left.axvline(thr_conf, color='black', ls='--', lw=1, label=f'thr_conf = {thr_conf:g}')
    left.axhline(thr_kps, color='black', ls=':', lw=1.2, label=f'thr_kps = {thr_kps:g}')
    left.legend(loc='upper left', fontsize=8)
    left.text(0.99, 0.99, f'grey: accepted region\naccepted: {int(acc.sum())} of {len(labels)}'
              ' (black-edged dots)', fontsize=8, ha='right', va='top', transform=left.transAxes)
    left.set_xlim(-0.02, 1.02)
    left.set_ylim(-0.02, 1.02)
    note = (' (level=keypoint: thr_conf applies per keypoint, accepted = all keypoints)'
            if level == 'keypoint' else '')
    left.set_xlabel("conf: mean of Teacher A's heatmap peaks" + note, fontsize=9)
    left.set_ylabel("KPS of Teacher A's keypoints", fontsize=9)
    left.set_title('Gate inputs of every unlabeled crop', fontsize=10)
    bar = fig.colorbar(dots, ax=left, fraction=0.05, pad=0.02)
    bar.set_label("OKS of Teacher A's pseudo-label vs diagnostic label", fontsize=8)

    groups = [(oks_a[acc], 'Teacher A, accepted', TEACHER_A_COLOR, '-'),
              (oks_a[~acc], 'Teacher A, rejected', 'black', '-'),
              (oks_b[~acc], 'Teacher B on the rejected', TEACHER_B_COLOR, '--')]
    for values, name, color, ls in groups:
        label = f'{name}: n={len(values)}' + (f', mean OKS {values.mean():.3f}'
                                               if len(values) else '')
        if len(values):
            right.hist(values, bins=OKS_BINS, weights=np.full(len(values), 1.0 / len(values)),
                       histtype='step', lw=1.8, color=color, ls=ls, label=label)
        else:
            right.plot([], [], color=color, ls=ls, label=label)
    right.set_xlim(0.0, 1.0)
    right.set_xlabel('OKS against the diagnostic label (1 = exact)', fontsize=9)
    right.set_ylabel("share of the group's crops per bin (width 0.05)", fontsize=9)
    right.set_title('Pseudo-label quality: accepted vs rejected', fontsize=10)
    right.legend(fontsize=8, loc='upper left')
    return fig
