"""tools/run_experiments.py resumes: a finished run is not trained or tested again, an
interrupted training resumes from its checkpoint, a trained but untested run is only tested;
and a rescaled schedule keeps its shape."""
from __future__ import annotations

import json
import re

import pytest
from script_loader import load_script

METRICS_LINE = ('teacher/coco/AP: 0.4000  teacher/coco/AP .5: 0.7000  '
                'teacher/coco/AP .75: 0.3000  teacher/coco/AR: 0.5000')


@pytest.fixture(scope='module')
def runner():
    return load_script('tools/run_experiments.py')


@pytest.fixture
def calls(runner, monkeypatch):
    """Replace the subprocess: record each tool call; train.py leaves what a training
    leaves (a best checkpoint, the validation row), test.py prints its metrics."""
    made = []

    def fake_tool(args, log, threads=1):
        made.append(args[0])
        run_dir = log.parent
        if args[0] == 'tools/train.py':
            (run_dir / 'best_teacher_coco_AP_iter_20.pth').write_bytes(b'')
            (run_dir / '20261202_000000/vis_data').mkdir(parents=True, exist_ok=True)
            row = {'step': 20, 'teacher/coco/AP': 0.3, 'teacher/coco/AP .5': 0.6,
                   'teacher/coco/AP .75': 0.2, 'teacher/coco/AR': 0.4}
            (run_dir / '20261202_000000/vis_data/scalars.json').write_text(json.dumps(row))
            return ''
        return METRICS_LINE

    monkeypatch.setattr(runner, 'tool', fake_tool)
    return made


def test_a_fresh_run_trains_then_tests_once(runner, calls, tmp_path):
    run = tmp_path / 'baseline_seed0'
    run.mkdir()
    record = runner.train_select_test(tmp_path / 'cfg.py', run)
    assert calls == ['tools/train.py', 'tools/test.py']
    assert record['val'] == {'AP': 0.3, 'AP50': 0.6, 'AP75': 0.2, 'AR': 0.4}
    assert record['test100'] == {'AP': 0.4, 'AP50': 0.7, 'AP75': 0.3, 'AR': 0.5}
    assert re.fullmatch(r'([0-9a-f]{12}|not a git checkout)( \+changes)?',
                        record['code_version']), record['code_version']
    assert runner.train_select_test(tmp_path / 'cfg.py', run) == record
    assert calls == ['tools/train.py', 'tools/test.py'], 'a finished run ran again'


def test_a_trained_but_untested_run_is_only_tested(runner, calls, tmp_path):
    run = tmp_path / 'ddp_seed1'
    run.mkdir()
    runner.train_select_test(tmp_path / 'cfg.py', run)
    (run / 'result.json').unlink()  # interrupted during the test
    calls.clear()
    runner.train_select_test(tmp_path / 'cfg.py', run)
    assert calls == ['tools/test.py']


def test_a_resumed_run_keeps_the_code_version_it_started_with(runner, calls, tmp_path):
    run = tmp_path / 'cmgc_seed0'
    run.mkdir()
    (run / 'code_version').write_text('0123456789ab\n')  # written when the training started
    assert runner.train_select_test(tmp_path / 'cfg.py', run)['code_version'] == '0123456789ab'


def test_an_interrupted_training_resumes(runner, monkeypatch, tmp_path):
    run = tmp_path / 'full_seed2'
    run.mkdir()
    (run / 'last_checkpoint').write_text(str(run / 'iter_10.pth'))
    seen = []

    def stop(args, log, threads=1):
        seen.append(args)
        raise SystemExit('interrupted again')

    monkeypatch.setattr(runner, 'tool', stop)
    with pytest.raises(SystemExit):
        runner.train_select_test(tmp_path / 'cfg.py', run)
    assert '--resume' in seen[0]


def test_a_rescaled_schedule_keeps_its_shape(runner, repo_root, tmp_path):
    from mmengine.config import Config

    base = repo_root / 'configs/nk_sapiens/infant/stage1_ssl_baseline_cpu.py'
    src = Config.fromfile(str(base))
    path = runner.run_config(base, tmp_path / 'run', seed=3, iters=src.train_cfg.max_iters // 2)
    cfg = Config.fromfile(str(path))
    assert cfg.randomness.seed == 3
    assert cfg.train_cfg.max_iters == src.train_cfg.max_iters // 2
    for old, new in zip(src.param_scheduler, cfg.param_scheduler):
        assert new['end'] == round(old['end'] / 2) and new['type'] == old['type']


def test_a_run_started_with_other_inputs_is_refused(runner, repo_root, tmp_path):
    base = repo_root / 'configs/nk_sapiens/infant/stage0_supervised_cpu.py'
    run = tmp_path / 'stage0_seed0'
    runner.run_config(base, run, seed=0, iters=None)
    runner.run_config(base, run, seed=0, iters=None)  # the same inputs: resumable
    with pytest.raises(SystemExit, match='config_sha256 differ'):
        runner.run_config(base, run, seed=0, iters=100)


@pytest.mark.parametrize('low, mean, verdict', [(0.005, 0.03, 'met'), (-0.01, 0.03, 'NOT met'),
                                                (0.001, 0.01, 'NOT met')])
def test_the_goal_sentence_follows_the_numbers(runner, low, mean, verdict):
    import argparse

    cell = dict(mean=0.3, std=0.01)
    row = {s: {k: cell for k in runner.METRICS} for s in ('val', 'test100')}
    iv = {k: dict(mean=mean, low=low, high=mean + 0.02) for k in ('AP', 'AR')}
    summary = dict(table={'control': row, 'baseline': row}, intervals={'baseline - control': iv},
                   runs={'control_seed0': dict(train_seconds=60.0)}, date='2026-12-02',
                   machine='2 CPU cores', val_images=40)
    args = argparse.Namespace(seeds=[0, 1, 2], one_stage0=False, size='cpu',
                              bootstrap_samples=2000, jobs=2)
    text = runner.markdown(summary, args, [])
    assert f'interval above 0": {verdict} (ΔAP' in text
    expected = 'above 0' if low > 0 else 'includes 0'
    assert f'| {runner.NAMES["baseline"]} − {runner.NAMES["control"]} |' in text
    assert text.count(f'| {expected} |') == 1


def test_a_tuning_record_from_another_stage0_is_flagged(runner, tmp_path, monkeypatch):
    """A round names its Stage0's digests; a val tuning record made from other weights says
    so, one from the same weights saved in another file does not; a record with only a file
    digest is compared by file, and says that the weights were not compared."""
    monkeypatch.setattr(runner, 'ROOT', tmp_path)
    made = {'a_same_weights': dict(stage0_sha256='f' * 12, stage0_weights_sha256='w' * 12),
            'b_other_weights': dict(stage0_sha256='r' * 12, stage0_weights_sha256='x' * 12),
            'c_same_file': dict(stage0_sha256='r' * 12),
            'd_other_file': dict(stage0_sha256='o' * 12)}
    for name, digests in made.items():
        (tmp_path / f'tuning_val_{name}.json').write_text(json.dumps(dict(
            method='baseline', seed=0, stage1_iters=400, stage0='s0.pth', **digests,
            variants={'v': dict(overrides='x=1', val=dict(AP=0.1, AR=0.2))})))
    round_stage0 = [dict(checkpoint='s0.pth', sha256='r' * 12, weights_sha256='w' * 12)]
    text = '\n'.join(runner.tuning_lines(sorted(tmp_path.glob('tuning_val*.json')),
                                         round_stage0))
    heads = [line for line in text.splitlines() if line.startswith('Stage1 settings')]
    assert len(heads) == 4
    assert "NOT this round's Stage0" not in heads[0] and f'weights {"w" * 12}…' in heads[0]
    assert "NOT this round's Stage0 (other weights)" in heads[1]
    assert "NOT this round's Stage0" not in heads[2]
    assert "NOT this round's Stage0 file (weights not compared)" in heads[3]
