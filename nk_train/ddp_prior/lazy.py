"""A ddp_prior named by a config, loaded the first time it is needed.

Teacher B and the KPS prior term use the prior only while training (and in the gating
reports); evaluating or exporting a Stage1 checkpoint must not need the prior's file. The
Stage1 model builds one ``LazyPrior`` and hands it to both, and asks for it when training
starts, so a missing or wrong file still fails before the first iteration and is read once.
A ``FrozenModel``: never in Stage1 state dicts, the optimiser or the EMA.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Sequence

from ..frozen import FrozenModel
from ..paths import project_path, require_project_file
from .prior import DDPPrior


def load_prior(checkpoint: str, keypoint_names: tuple[str, ...], user: str) -> DDPPrior:
    """The checked prior of ``checkpoint``; errors name ``user`` (the setting) and the fix."""
    path = require_project_file(checkpoint, f'{user} checkpoint',
                                'Train one with tools/train_ddp_prior.py --out PATH '
                                f'and set {user}.checkpoint=PATH.')
    prior = DDPPrior.from_checkpoint(path)
    if tuple(prior.keypoint_names) != keypoint_names:
        raise ValueError(f'{user}: {path} was trained on the keypoints '
                         f'{list(prior.keypoint_names)}, this model has {list(keypoint_names)}')
    return prior


class LazyPrior(FrozenModel[DDPPrior]):
    """Args:
        checkpoint: a ``tools/train_ddp_prior.py`` checkpoint (relative: to the checkout, see
            ``nk_train.paths``).
        keypoint_names: the keypoint set (order) the prior must have been trained on.
        user: who needs it, for error messages (e.g. ``'model.ddp_prior'``).
    """

    def __init__(self, checkpoint: str | Path, keypoint_names: Sequence[str], user: str) -> None:
        self.checkpoint = str(checkpoint)
        self.keypoint_names = tuple(keypoint_names)
        super().__init__(partial(load_prior, self.checkpoint, self.keypoint_names, user), user)

    @property
    def path(self) -> Path:
        """The file it reads (resolved as ``nk_train.paths`` says), to tell two apart."""
        return project_path(self.checkpoint).resolve()
