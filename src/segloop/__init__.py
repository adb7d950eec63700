"""segloop: medical image segmentation with the expert in the loop.

Layers (imports point down only): :mod:`segloop.io` (data model and file
formats) → :mod:`segloop.tools`, :mod:`segloop.metrics`,
:mod:`segloop.fusion`, :mod:`segloop.simulate` (NumPy/SciPy algorithms) →
:mod:`segloop.learn` (PyTorch/MONAI) → :mod:`segloop.server`,
:mod:`segloop.cli`, :mod:`segloop.bench` (applications).
"""

from importlib.metadata import PackageNotFoundError, version

from segloop.errors import SegloopError

try:
    __version__ = version("segloop")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+unknown"

__all__ = ["SegloopError", "__version__"]
