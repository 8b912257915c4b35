"""Cross-modal geometric consistency: the frozen depth/normal teacher and the CMGC losses."""
from .geometric_teacher import (GeometricTeacher, StandInGeometricTeacher,
                                build_geometric_teacher, teacher_description)
from .losses import CMGCLoss, sample_maps

__all__ = ['GeometricTeacher', 'StandInGeometricTeacher', 'build_geometric_teacher',
           'teacher_description', 'CMGCLoss', 'sample_maps']
