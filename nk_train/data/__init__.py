"""See the package docstring of nk_train."""
from .mixed_sampler import MixedSourceSampler, SourceConcatDataset  # noqa: F401,E402
from .checked_coco import CheckedCocoDataset  # noqa: F401,E402
from .unlabeled_dataset import UnlabeledCocoDataset  # noqa: F401,E402
from .views import CoarseDropout, ToBranch, WeakStrongViews, ssl_collate  # noqa: F401,E402
from .seeded_topdown_affine import SeededTopdownAffine  # noqa: F401,E402  (weak view of the Stage1 configs)
from .seeded_views import SeededViewDataset  # noqa: F401,E402
from .geo_cache_transform import LoadGeoCacheMaps  # noqa: F401,E402
from .geo_views import GeoTeacherCrop, PackGeoViewInputs  # noqa: F401,E402
