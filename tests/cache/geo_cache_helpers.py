"""Helpers of the cache tests (constants, running the CLIs, the geo_cache dict)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from script_loader import load_script  # noqa: F401  (re-exported to the cache tests)

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG = 'configs/nk_sapiens/infant/_base_/geo_cache_cpu.py'
INDICES = ['0', '1', '2', '3', '4', '5']
SMALL = ['geo_cache.rows_per_shard=4', 'geo_cache.batch_size=4',
         'geo_cache.splits.labeled.num_seeds=2', 'geo_cache.teacher.width=8',
         'geo_cache.teacher.num_layers=2', 'geo_cache.teacher.input_size=(128,96)']


def small_options(root: Path, *extra: str) -> list[str]:
    return [f'geo_cache.root={root}', *SMALL, *extra]


def geo_settings_dict(root: Path, *extra: str) -> dict:
    """The geo_cache dict exactly as the CLI sees it with ``small_options``."""
    from mmengine.config import Config, DictAction

    cfg = Config.fromfile(str(REPO_ROOT / CONFIG))
    options = {}
    for item in small_options(root, *extra):
        key, value = item.split('=', 1)
        options[key] = DictAction._parse_iterable(value)
    cfg.merge_from_dict(options)
    return cfg.geo_cache.to_dict()


def precompute_argv(root: Path, *args: str, options=(), split: str = 'labeled') -> list[str]:
    return ['--split', split, '--config', CONFIG, '--no-progress', *args,
            '--cfg-options', *small_options(root, *options)]


def check_argv(root: Path, *args: str, options=(), split: str = 'labeled',
               indices=INDICES) -> list[str]:
    return ['--config', CONFIG, '--split', split, '--indices', *indices, *args,
            '--cfg-options', *small_options(root, *options)]


def run_precompute(cli, root: Path, tmp: Path, *args: str, options=(),
                   split: str = 'labeled') -> tuple[int, dict]:
    summary = tmp / f'summary_{len(list(tmp.glob("summary_*")))}.json'
    rc = cli.main(precompute_argv(root, '--summary-json', str(summary), *args,
                                  options=options, split=split))
    return rc, (json.loads(summary.read_text()) if summary.exists() else {})


def subprocess_env() -> dict:
    """One OpenMP thread, and this checkout's nk_train first on the path."""
    path = os.pathsep.join([str(REPO_ROOT), os.environ.get('PYTHONPATH', '')])
    return dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=path)


def start_precompute(root: Path, *args: str, options=(), die: str | None = None
                     ) -> subprocess.Popen:
    """precompute/geo_cache.py in its own process (and process group), output captured;
    ``die``: ``after-record`` / ``after-fold``, the moment it exits abruptly (``faults.py``)."""
    script = ['tests/cache/faults.py', die] if die else ['precompute/geo_cache.py']
    return subprocess.Popen([sys.executable, *script,
                             *precompute_argv(root, *args, options=options)],
                            cwd=REPO_ROOT, env=subprocess_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def finish(proc: subprocess.Popen, timeout: float = 600) -> tuple[int, str]:
    """Wait for ``proc``, then kill what is left of its process group (dask workers of a
    coordinator that exited abruptly); return (exit code, output)."""
    try:
        out, _ = proc.communicate(timeout=timeout)
    finally:
        try:
            os.killpg(proc.pid, 9)
        except ProcessLookupError:
            pass
    return proc.returncode, out
