"""NK-Sapiens: semi-supervised infant pose training as an mmengine/mmpose plugin.

``custom_imports=dict(imports=['nk_train'])`` in a config registers every module below
into mmpose's registries (the configs use ``default_scope='mmpose'``).
"""
__version__ = '0.1.0'

from . import compat  # noqa: F401,E402  (must run first: arch names, torch.load allow-list)
from . import cache, cmgc, data, ddp_prior, engine, evaluation, kps, models  # noqa: F401,E402
