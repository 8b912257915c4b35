"""A ddp_prior named by a config, loaded the first time it is needed.

Teacher B and the KPS prior term use the prior only while training (and in the gating
reports); evaluating or exporting a Stage1 checkpoint must not need the prior's file. The
Stage1 model calls ``load()`` when training starts, so a missing or wrong file still fails
before the first iteration. A plain object, not an ``nn.Module``: the prior's weights come from
its own checkpoint, never from Stage1 state dicts, the optimiser or the EMA.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..paths import require_project_file
from .prior import DDPPrior


class LazyPrior:
    """Args:
        checkpoint: a ``tools/train_ddp_prior.py`` checkpoint (relative: to the checkout, see
            ``nk_train.paths``).
        keypoint_names: the keypoint set (order) the prior must have been trained on.
        user: who needs it, for error messages (e.g. ``'model.ddp_prior'``).
    """

    def __init__(self, checkpoint: str | Path, keypoint_names: Sequence[str], user: str) -> None:
        self.checkpoint = str(checkpoint)
        self.keypoint_names = tuple(keypoint_names)
        self.user = user
        self._prior: DDPPrior | None = None

    def load(self) -> DDPPrior:
        if self._prior is None:
            path = require_project_file(self.checkpoint, f'{self.user} checkpoint',
                                        'Train one with tools/train_ddp_prior.py --out PATH '
                                        f'and set {self.user}.checkpoint=PATH.')
            prior = DDPPrior.from_checkpoint(path)
            if tuple(prior.keypoint_names) != self.keypoint_names:
                raise ValueError(f'{self.user}: {path} was trained on the keypoints '
                                 f'{list(prior.keypoint_names)}, this model has '
                                 f'{list(self.keypoint_names)}')
            self._prior = prior
        return self._prior
