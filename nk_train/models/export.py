"""Turn a Stage1 checkpoint into a plain ``TopdownPoseEstimator`` checkpoint.

The Stage1 wrapper stores ``student.*`` and ``teacher.*``. Deployment, Stage0 configs and
mmpose's tools expect the keys of a single estimator, so one branch is cut out with its
prefix removed; optimizer and loop state are dropped (the result is for inference or for
initialising another run, not for resuming).
"""
from __future__ import annotations

from collections import OrderedDict

from .ssl_estimator import BRANCHES


def extract_branch(checkpoint: dict, branch: str = 'teacher', source: str = '?') -> dict:
    """``{'meta', 'state_dict'}`` of ``branch`` of a Stage1 checkpoint (``source`` names it
    in errors and in ``meta['nk_export']``)."""
    if branch not in BRANCHES:
        raise ValueError(f'branch must be one of {BRANCHES}, got {branch!r}')
    state = checkpoint.get('state_dict')
    if not isinstance(state, dict):
        raise ValueError(f'{source}: not an mmengine checkpoint (no state_dict)')
    prefix = f'{branch}.'
    out = OrderedDict((k[len(prefix):], v) for k, v in state.items() if k.startswith(prefix))
    if not out:
        found = sorted({k.split('.', 1)[0] for k in state})
        raise ValueError(f'{source}: no "{prefix}*" weights; top-level names are {found}. '
                         'Is it a Stage1 (SemiTopdownPoseEstimator) checkpoint?')
    meta = dict(checkpoint.get('meta') or {})
    meta['nk_export'] = dict(source=source, branch=branch, iter=meta.get('iter'))
    return {'meta': meta, 'state_dict': out}
