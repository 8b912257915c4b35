"""Where the NK-Sapiens checkout is, and the one rule for relative paths in NK settings.

A relative path in a setting of this project's own components (``stats_file`` of the KPS and
CMGC losses, ``geo_cache.root`` and the geometric teacher's files, ``model.ddp_prior``'s
checkpoint) names something this project ships or makes, so it is resolved against the
NK-Sapiens checkout (``PROJECT_ROOT``, the folder holding the ``nk_train`` package) wherever
the command runs: from this repo, or from ``pose/`` of a Sapiens checkout. Settings that
mmengine and mmpose read (``data_root``, ``work_dir``, ``load_from``, ``model.init_from``) keep
their usual meaning, relative to the working directory, as in every OpenMMLab config.
"""
from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def project_path(path: str | Path) -> Path:
    """``path`` if absolute (``~`` expanded), else ``PROJECT_ROOT / path``."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else PROJECT_ROOT / p


def require_project_file(path: str | Path, what: str, fix: str) -> Path:
    """The resolved ``path``; ``FileNotFoundError`` naming both forms and the fix if absent."""
    resolved = project_path(path)
    if not resolved.is_file():
        rel = '' if Path(path).expanduser().is_absolute() else \
            f' (relative paths are resolved against the NK-Sapiens checkout {PROJECT_ROOT})'
        raise FileNotFoundError(f'{what} not found: {resolved}{rel}. {fix}')
    return resolved
