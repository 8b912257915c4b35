"""Cross-modal geometric consistency: the frozen depth/normal teacher, its maps on the map
grid, and the CMGC losses."""
from . import stand_in_teacher  # noqa: F401  (registers StandInGeometricNet)
from .geometric_teacher import (GeometricTeacher, TeacherOutput, build_geometric_teacher,
                                teacher_description)
from .losses import CMGCLoss, sample_maps
from .teacher_maps import resample_to_map, teacher_maps

__all__ = ['GeometricTeacher', 'TeacherOutput', 'build_geometric_teacher',
           'teacher_description', 'CMGCLoss', 'sample_maps', 'resample_to_map', 'teacher_maps']
