"""Data with known answers, for tests, benchmarks and the demo.

The seeded synthetic phantoms of :mod:`segloop.data.phantoms` are re-exported
here.  The package sits at the level of the algorithms: it may use
:mod:`segloop.io`, NumPy, SciPy and scikit-image, never torch or the server.
"""

from segloop.data.phantoms import (
    BACKGROUND_LEVEL,
    MIN_BLOB_RADIUS,
    Phantom,
    ball,
    box_mask,
    disk,
    phantom_2d,
    phantom_3d,
)

__all__ = [
    "BACKGROUND_LEVEL",
    "MIN_BLOB_RADIUS",
    "Phantom",
    "ball",
    "box_mask",
    "disk",
    "phantom_2d",
    "phantom_3d",
]
