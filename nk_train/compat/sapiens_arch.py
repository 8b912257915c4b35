"""Teach stock mmpretrain's ``VisionTransformer`` the Sapiens arch names.

Sapiens ships its own mmpretrain whose ``VisionTransformer.arch_zoo`` knows
``sapiens_0.3b/0.6b/1b/2b``. Stock mmpretrain does not, so a Sapiens config would fail there.
We add only the names that are missing: inside a Sapiens checkout nothing is changed.
"""
from __future__ import annotations

SAPIENS_ARCHS: dict[str, dict[str, int]] = {
    'sapiens_0.3b': dict(embed_dims=1024, num_layers=24, num_heads=16, feedforward_channels=4096),
    'sapiens_0.6b': dict(embed_dims=1280, num_layers=32, num_heads=16, feedforward_channels=5120),
    'sapiens_1b': dict(embed_dims=1536, num_layers=40, num_heads=24, feedforward_channels=6144),
    'sapiens_2b': dict(embed_dims=1920, num_layers=48, num_heads=32, feedforward_channels=7680),
}


def register_sapiens_archs() -> list[str]:
    """Add missing Sapiens arch names to ``VisionTransformer.arch_zoo``; return those added."""
    from mmpretrain.models.backbones.vision_transformer import VisionTransformer

    added = []
    for name, settings in SAPIENS_ARCHS.items():
        if name not in VisionTransformer.arch_zoo:
            VisionTransformer.arch_zoo[name] = dict(settings)
            added.append(name)
    return added
