"""A ddp_prior named by a config, loaded the first time it is needed.

Teacher B and the KPS prior term use the prior only while training (and in the gating
reports); evaluating or exporting a Stage1 checkpoint must not need the prior's file. The
Stage1 model calls ``load()`` when training starts, so a missing or wrong file still fails
before the first iteration. A plain object, not an ``nn.Module``: the prior's weights come from
its own checkpoint, never from Stage1 state dicts, the optimiser or the EMA.
"""
from __future__ import annotations

from pathlib import Path

from ..paths import require_project_file
from .prior import DDPPrior


class LazyPrior:
    """Args:
        checkpoint: a ``tools/train_ddp_prior.py`` checkpoint (relative: to the checkout, see
            ``nk_train.paths``).
        num_keypoints: K the prior must have.
        user: who needs it, for error messages (e.g. ``'model.ddp_prior'``).
    """

    def __init__(self, checkpoint: str | Path, num_keypoints: int, user: str) -> None:
        self.checkpoint = str(checkpoint)
        self.num_keypoints = int(num_keypoints)
        self.user = user
        self._prior: DDPPrior | None = None

    def load(self) -> DDPPrior:
        if self._prior is None:
            path = require_project_file(self.checkpoint, f'{self.user} checkpoint',
                                        'Train one with tools/train_ddp_prior.py --out PATH '
                                        f'and set {self.user}.checkpoint=PATH.')
            prior = DDPPrior.from_checkpoint(path)
            if prior.num_keypoints != self.num_keypoints:
                raise ValueError(f'{self.user}: {path} has {prior.num_keypoints} keypoints, '
                                 f'{self.num_keypoints} are needed')
            self._prior = prior
        return self._prior
