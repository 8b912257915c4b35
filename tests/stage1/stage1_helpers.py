"""Shared constants and helpers of the Stage1 tests (imported by name; pytest puts this
directory on sys.path)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

STAGE0_CPU = 'configs/nk_sapiens/infant/stage0_supervised_cpu.py'
STAGE1_CPU = 'configs/nk_sapiens/infant/stage1_ssl_baseline_cpu.py'
STAGE1_FULL = 'configs/nk_sapiens/infant/stage1_ssl_baseline.py'
LABELED_INDICES = list(range(0, 160, 8))  # 20 labeled train-part images spread over it
UNLABELED_INDICES = list(range(0, 300, 15))  # 20 unlabeled instances (x K seeded views)
VAL_INDICES = list(range(0, 100, 5))  # 20 val crops


def run_cli(args: list[str], cwd: Path, prefix: list[str] | None = None) -> str:
    """Run a CLI (python ... by default) in ``cwd``; fail the test with its output tail."""
    proc = subprocess.run([*(prefix or [sys.executable]), *args], cwd=cwd,
                          capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    return out


def subset_cfg(labeled=LABELED_INDICES, unlabeled=UNLABELED_INDICES) -> dict[str, list]:
    """Config overrides selecting the labeled / unlabeled subsets of a Stage1 config."""
    return {'train_dataloader.dataset.datasets.0.indices': list(labeled),
            'train_dataloader.dataset.datasets.1.dataset.indices': list(unlabeled)}


def as_cli(options: dict) -> list[str]:
    """The same overrides as ``--cfg-options`` arguments."""
    return [f'{k}={v}' for k, v in options.items()]
