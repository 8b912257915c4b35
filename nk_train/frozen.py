"""A frozen model that another model uses without it becoming part of that model.

Teacher B's ddp_prior, the KPS prior term and the online geometric teacher come from their own
files and are only ever run here. As an ``nn.Module`` attribute such a model would enter its
owner's state dict (every Stage1 checkpoint), its ``parameters()`` (the optimiser, which refuses
parameters outside the student) and the EMA. ``FrozenModel`` holds one as a plain object
instead, so none of those see it, and reads its file on first use, so evaluating or exporting
a checkpoint never needs it. Because the owner's ``.to(device)`` does not reach it either, the
caller names the device it needs.
"""
from __future__ import annotations

from typing import Callable, Generic, TypeVar

import torch
from torch import nn

M = TypeVar('M', bound=nn.Module)


class FrozenModel(Generic[M]):
    """A model loaded on first use, frozen, outside its owner's state dict, optimiser and EMA.

    Args:
        load: builds the model from its own file(s); called once, by the first ``get``. Use a
            module-level function (or ``functools.partial`` of one) so the holder pickles.
        name: what the model is, for messages (e.g. ``'model.ddp_prior'``).
    """

    def __init__(self, load: Callable[[], M], name: str) -> None:
        self._load = load
        self.name = name
        self._model: M | None = None

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def get(self, device: torch.device | str | None = None) -> M:
        """The model, loaded and frozen (no gradients, eval mode) on the first call; moved to
        ``device`` when one is given."""
        if self._model is None:
            model = self._load()
            if not isinstance(model, nn.Module):
                raise TypeError(f'{self.name}: the loader returned a {type(model).__name__}, '
                                'not an nn.Module')
            model.requires_grad_(False)
            model.eval()
            self._model = model
        if device is not None:
            self._model.to(device)  # a no-op for tensors already there
        return self._model

    def __repr__(self) -> str:
        state = 'loaded' if self.loaded else 'not loaded'
        return f'{type(self).__name__}({self.name!r}, {state})'
