"""tools/gating_report.py on real unlabeled crops: every crop lands in exactly one Teacher A
group, and with teacher = student (a Stage0 checkpoint fills both branches) the student's
accuracy is the crop-weighted mean of the accepted and rejected groups."""
from __future__ import annotations

import json

import pytest
from full_helpers import ABLATIONS_CPU, UNLABELED_INDICES, run_cli


def test_gating_report_groups(repo_root, stage0_ckpt, prior_ckpt, tmp_path):
    out = tmp_path / 'report.json'
    run_cli(['tools/gating_report.py', ABLATIONS_CPU['full'], '--checkpoint', str(stage0_ckpt),
             '--indices', *map(str, UNLABELED_INDICES), '--batch-size', '4', '--json', str(out),
             '--cfg-options', f'model.ddp_prior.checkpoint={prior_ckpt}'], repo_root)
    groups = json.loads(out.read_text())['groups']
    n = len(UNLABELED_INDICES)
    accepted, rejected = groups['teacherA_accepted'], groups['teacherA_rejected']
    assert accepted['n'] + rejected['n'] == n
    assert groups['teacherB_on_rejected']['n'] == rejected['n']
    assert groups['teacherB_all']['n'] == groups['student_all']['n'] == n
    for name, g in groups.items():
        if g['n']:
            assert 0.0 <= g['pck'] <= 1.0 and 0.0 <= g['oks'] <= 1.0, (name, g)
    for metric in ('pck', 'oks'):
        parts = [g['n'] * g[metric] for g in (accepted, rejected) if g['n']]
        assert sum(parts) / n == pytest.approx(groups['student_all'][metric], abs=1e-9)
