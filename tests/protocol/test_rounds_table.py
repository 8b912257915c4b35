"""tools/rounds_table.py: the committed ROUNDS.md is what the command writes from the recorded
rounds now, rounds are read in numeric order (round10 after round9, folders that are not
rounds left out), the tally counts intervals by where they lie (hand-checkable rounds), and a
file that is not a results file, or a round given twice, is refused by name."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from script_loader import REPO_ROOT, load_script

PAGE = REPO_ROOT / 'docs/nk_sapiens/ROUNDS.md'
PAIR = '| Baseline (L_sup + L_cons) − Control (Stage0 continued, labeled only) |'


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


def test_rounds_sort_by_number_and_skip_other_folders(rounds, tmp_path):
    for folder in ('round10', 'round9', 'round2', 'round6_old', 'figures'):
        _write(tmp_path / folder / 'results.json', '{}')
    found = rounds.recorded_rounds(tmp_path)
    assert [p.parent.name for p in found] == [tmp_path.name, 'round2', 'round9', 'round10']


def _row(val: float, test: float) -> dict:
    return {'val': {'AP': {'mean': val, 'std': 0.0}},
            'test100': {'AP': {'mean': test, 'std': 0.0}}}


def _round(ap_low: float, ap_high: float, val_gain: float) -> dict:
    """A minimal results file: control and Baseline, one comparison with the given interval."""
    mean = (ap_low + ap_high) / 2
    return {'seeds': [0, 1], 'date': '2026-12-07', 'runs': {},
            'table': {'control': _row(0.10, 0.20), 'baseline': _row(0.10 + val_gain, 0.20 + mean)},
            'intervals': {'baseline - control': {'AP': {'mean': mean, 'low': ap_low,
                                                        'high': ap_high}}}}


def _write(path: Path, data: dict | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data))


def test_tally_counts_where_each_interval_lies(rounds, tmp_path):
    files = []
    for n, (low, high, val) in enumerate([(0.01, 0.03, 0.05), (0.0, 0.04, -0.01),
                                          (-0.03, -0.01, 0.05), (-0.02, 0.02, 0.01)], start=2):
        files.append(tmp_path / f'round{n}' / 'results.json')
        _write(files[-1], _round(low, high, val))
    page = rounds.markdown(files, [])
    assert f'{PAIR} 2 | +0.0200 [+0.0100, +0.0300] | above 0 | +0.0500 |' in page
    assert f'{PAIR} 3 | +0.0200 [+0.0000, +0.0400] | includes 0 | -0.0100 |' in page
    assert f'{PAIR} 4 | -0.0200 [-0.0300, -0.0100] | below 0 | +0.0500 |' in page
    # 4 rounds: 1 above, 2 across 0 (one touching it), 1 below; rounds 4 and 5 gained on val
    # while Test100 did not gain (round 5's ΔAP is exactly 0)
    assert f'{PAIR} 4 | 1 | 2 | 1 | -0.0200 to +0.0200 | 2 |' in page


def test_a_file_that_is_not_a_results_file_is_named(rounds, tmp_path):
    good, bad = tmp_path / 'round2' / 'results.json', tmp_path / 'round3' / 'results.json'
    _write(good, _round(0.0, 0.1, 0.0))
    broken = _round(0.0, 0.1, 0.0)
    del broken['intervals']
    unmatched = dict(_round(0.0, 0.1, 0.0), table={'control': _row(0.1, 0.2)})
    for content, why in [(broken, 'missing or malformed'), ('{', 'not a readable results.json'),
                         (unmatched, re.escape("table rows ['baseline']"))]:
        _write(bad, content)
        with pytest.raises(ValueError, match=re.escape(str(bad)) + '.*' + why):
            rounds.markdown([good, bad], [])


def test_a_round_given_twice_is_refused(rounds, tmp_path):
    first, second = tmp_path / 'round2' / 'results.json', tmp_path / 'a/round2/results.json'
    for path in (first, second):
        _write(path, _round(0.0, 0.1, 0.0))
    with pytest.raises(ValueError, match='are both round 2'):
        rounds.markdown([first, second], [])
