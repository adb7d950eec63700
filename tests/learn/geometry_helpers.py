"""An anisotropic, rotated and flipped grid, shared by the inference and cascade tests.

Test modules beside this file import it by name (``from geometry_helpers import
ORIGIN, SPACING, rotation``): pytest puts their folder on ``sys.path``.
"""

import numpy as np

SPACING = (4.0, 0.8, 0.8)  #: thick slices, fine in-plane pixels (z, y, x; mm)
ORIGIN = (-12.5, 30.25, 7.0)


def rotation(deg):
    """A direction matrix: ``deg`` degrees about the third world axis, then the second flipped."""
    a = np.deg2rad(deg)
    rz = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    return rz @ np.diag([1.0, -1.0, 1.0])  # rotated and flipped
