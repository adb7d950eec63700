"""Commented starting configs: ``segloop config init --preset 2d|3d|softseg``.

Each preset is a YAML file of ``segloop/learn/presets/`` that lists every key of
the schema (:mod:`segloop.learn.config`) with its value and a comment saying
what it does; ``data.path`` is the placeholder ``path/to/dataset``.

* ``2d``: a 2D U-Net on images or slices of volumes (softmax, Dice + cross-entropy);
* ``3d``: a small 3D U-Net on 64³ patches, sliding-window inference;
* ``softseg``: SoftSeg -- soft labels, normalized-ReLU output, adaptive wing loss.

Examples
--------
>>> from segloop.learn.config import load_config
>>> cfg = load_config(preset_dict("softseg"), overrides=["data.path=/data/qubiq"])
>>> cfg.model.final_activation, cfg.loss.name, cfg.data.soft_labels
('normrelu', 'adaptive_wing', True)
>>> preset_text("2d").splitlines()[0]
'# segloop training config: a 2D U-Net on images or on slices of volumes.'
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml

from segloop.errors import InvalidArgumentError
from segloop.io.files import atomic_output

__all__ = ["PRESETS", "preset_dict", "preset_text", "write_preset"]

#: Names of the presets.
PRESETS = ("2d", "3d", "softseg")


def preset_text(name: str) -> str:
    """The commented YAML of preset ``name``."""
    if name not in PRESETS:
        raise InvalidArgumentError(f"--preset {name!r}: unknown preset (known: "
                                   f"{', '.join(PRESETS)})")
    return resources.files("segloop.learn").joinpath("presets", f"{name}.yaml").read_text(
        encoding="utf-8")


def preset_dict(name: str) -> dict:
    """Preset ``name`` as plain data (what :func:`segloop.learn.config.load_config` takes)."""
    return yaml.safe_load(preset_text(name))


def write_preset(name: str, path, *, overwrite: bool = False) -> Path:
    """Write preset ``name`` to ``path`` (atomically).

    Parameters
    ----------
    name : {'2d', '3d', 'softseg'}
        The preset.
    path : str or os.PathLike
        The YAML file to write.
    overwrite : bool
        Replace an existing file (the old one is kept as ``NAME.~N~``).

    Raises
    ------
    segloop.errors.OutputExistsError
        ``path`` exists and ``overwrite`` is false.
    segloop.errors.InvalidArgumentError
        An unknown preset.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> out = write_preset("3d", pathlib.Path(tempfile.mkdtemp()) / "my.yaml")
    >>> preset_dict("3d") == yaml.safe_load(out.read_text())
    True
    """
    text = preset_text(name)
    with atomic_output(path, overwrite=overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)
