"""Engine pieces: distributed start-up, bf16 autocast, hooks and loops."""
from .amp import BF16AutocastOptimWrapper, enable_amp
from .distributed import prepare_distributed
from .finite_guard import FiniteTrainingHook, NonFiniteLossError, raise_if_non_finite

__all__ = ['BF16AutocastOptimWrapper', 'FiniteTrainingHook', 'NonFiniteLossError', 'enable_amp',
           'prepare_distributed', 'raise_if_non_finite']
from .ema_hook import TeacherEMAHook, ema_update  # noqa: F401,E402
from .geo_cache_copies_hook import GeoCacheCopiesHook  # noqa: F401,E402
from .ssl_optim_constructor import StudentLayerDecayOptimWrapperConstructor  # noqa: F401,E402
from .weight_digest_hook import WeightDigestHook  # noqa: F401,E402
