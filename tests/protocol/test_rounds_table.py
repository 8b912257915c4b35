"""tools/rounds_table.py: the committed ROUNDS.md is what the command writes from the recorded
rounds now, every recorded round is on it, the tally counts intervals by where they lie (a
hand-checkable pair of rounds), and a file that is not a results file is refused by name."""
from __future__ import annotations

import copy
import json

import pytest
from script_loader import REPO_ROOT, load_script

PAGE = REPO_ROOT / 'docs/nk_sapiens/ROUNDS.md'


@pytest.fixture(scope='module')
def rounds():
    return load_script('tools/rounds_table.py')


def test_committed_page_is_what_the_command_writes(rounds):
    fresh = rounds.markdown(rounds.recorded_rounds(), ['--out', 'docs/nk_sapiens/ROUNDS.md'])
    assert PAGE.read_text() == fresh, (
        f'{PAGE} is stale: regenerate it with tools/rounds_table.py --out docs/nk_sapiens/ROUNDS.md')


def test_every_recorded_round_is_read_in_order(rounds):
    names = [rounds.round_name(p) for p in rounds.recorded_rounds()]
    records = sorted((REPO_ROOT / 'docs/nk_sapiens').glob('round*/RESULTS.md'))
    assert names[0] == '1' and len(names) == len(records) + 1
    assert names == [str(i) for i in range(1, len(names) + 1)]


def _round(ap_low: float, ap_high: float, val_gain: float) -> dict:
    """A minimal results file: control and Baseline, one comparison with the given interval."""
    row = lambda val, test: {'val': {'AP': {'mean': val, 'std': 0.0}},  # noqa: E731
                             'test100': {'AP': {'mean': test, 'std': 0.0}}}
    mean = (ap_low + ap_high) / 2
    return {'seeds': [0, 1], 'date': '2026-12-07', 'runs': {},
            'table': {'control': row(0.10, 0.20), 'baseline': row(0.10 + val_gain, 0.20 + mean)},
            'intervals': {'baseline - control': {'AP': {'mean': mean, 'low': ap_low,
                                                        'high': ap_high}}}}


def test_tally_counts_where_each_interval_lies(rounds, tmp_path):
    files = []
    for n, (low, high, val) in enumerate([(0.01, 0.03, 0.05), (0.0, 0.04, -0.01),
                                          (-0.03, -0.01, 0.05), (-0.02, 0.02, 0.01)], start=2):
        path = tmp_path / f'round{n}' / 'results.json'
        path.parent.mkdir()
        path.write_text(json.dumps(_round(low, high, val)))
        files.append(path)
    page = rounds.markdown(files, [])
    pair = '| Baseline (L_sup + L_cons) − Control (Stage0 continued, labeled only) |'
    assert f'{pair} 2 | +0.0200 [+0.0100, +0.0300] | above 0 | +0.0500 |' in page
    assert f'{pair} 3 | +0.0200 [+0.0000, +0.0400] | includes 0 | -0.0100 |' in page
    assert f'{pair} 4 | -0.0200 [-0.0300, -0.0100] | below 0 | +0.0500 |' in page
    # 4 rounds: 1 above, 2 across 0 (one touching it), 1 below; rounds 4 and 5 gained on val
    # while Test100 did not gain (round 5's ΔAP is exactly 0)
    assert f'{pair} 4 | 1 | 2 | 1 | -0.0200 to +0.0200 | 2 |' in page


def test_a_file_that_is_not_a_results_file_is_named(rounds, tmp_path):
    good = tmp_path / 'round2' / 'results.json'
    good.parent.mkdir()
    good.write_text(json.dumps(_round(0.0, 0.1, 0.0)))
    bad = tmp_path / 'round3' / 'results.json'
    bad.parent.mkdir()
    broken = copy.deepcopy(_round(0.0, 0.1, 0.0))
    del broken['intervals']
    bad.write_text(json.dumps(broken))
    with pytest.raises(ValueError, match=rf'{bad}.*missing intervals'):
        rounds.markdown([good, bad], [])
    bad.write_text('{')
    with pytest.raises(ValueError, match=rf'{bad}: not a readable results.json'):
        rounds.markdown([good, bad], [])
