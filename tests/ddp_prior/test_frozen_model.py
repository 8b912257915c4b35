"""``FrozenModel`` (a ``LazyPrior`` around a real trained prior, the prior's own networks)
stays out of its owner: not in its state dict, parameters or modules (so not in the optimiser
or the EMA), read once on first use, frozen whatever the owner's mode, moved only to the
device a caller names."""
from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
import torch
from torch import nn

from nk_train.ddp_prior import DenoiserConfig, LazyPrior, build_networks
from nk_train.frozen import FrozenModel


class Owner(nn.Module):
    """A trainable module holding a frozen model, as the Stage1 model holds the prior."""

    def __init__(self, frozen: FrozenModel) -> None:
        super().__init__()
        self.layer = nn.Linear(2, 2)
        self.frozen = frozen


def test_frozen_model_stays_out_of_its_owner(tiny_checkpoint, skeleton, monkeypatch):
    path = tiny_checkpoint[1]
    real_load, reads = torch.load, []

    def counting_load(f, *args, **kwargs):
        reads.extend([f] if Path(f) == path else [])
        return real_load(f, *args, **kwargs)

    monkeypatch.setattr(torch, 'load', counting_load)
    owner = Owner(LazyPrior(path, skeleton.keypoint_names, 'test prior'))
    assert not owner.frozen.loaded and not reads  # nothing is read before first use
    prior = owner.frozen.get()
    assert owner.frozen.get() is prior and len(reads) == 1
    assert set(owner.state_dict()) == {'layer.weight', 'layer.bias'}
    assert {id(p) for p in owner.parameters()} == {id(p) for p in owner.layer.parameters()}
    assert [name for name, _ in owner.named_modules()] == ['', 'layer']
    owner.to('meta')  # the owner's move does not reach it ...
    assert next(prior.parameters()).device.type == 'cpu'
    owner.frozen.get('meta')  # ... the caller's request does
    assert next(prior.parameters()).device.type == 'meta'


def test_what_it_loads_is_frozen_whatever_the_owner_does(tiny_checkpoint):
    """The prior's networks as training builds them (trainable) come out frozen."""
    config = DenoiserConfig(**tiny_checkpoint[0]['denoiser'])
    owner = Owner(FrozenModel(partial(build_networks, config), 'ddp_prior networks'))
    networks = owner.frozen.get()
    owner.train()
    assert owner.layer.training and not any(m.training for m in networks.modules())
    assert not any(p.requires_grad for p in networks.parameters())


def test_a_loader_must_return_a_module():
    with pytest.raises(TypeError, match='broken teacher.*not an nn.Module'):
        FrozenModel(dict, 'broken teacher').get()
