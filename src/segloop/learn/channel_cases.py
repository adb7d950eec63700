"""One case per channel of a multi-channel image (``data.split_channels``).

Some datasets store several sequences of one acquisition as the channels of
one file: LGG's RGB TIFF slices hold the pre-contrast T1, the FLAIR and the
post-contrast T1. With ``data.split_channels: [t1, flair, t1c]`` (one name per
channel, in channel order) each case becomes one single-channel case per
channel, so a model learns from every sequence alone (a FiLM model told which
one it sees: :mod:`segloop.learn.film`):

* id ``CASE_NAME``, the same subject, session, labels and options (the
  sequences of a case never cross splits when splitting by subject);
* contrast ``NAME``, also in its metadata (``contrast``: what FiLM's built-in
  field reads), and ``channel`` the channel index;
* its image is channel ``i`` of the case's image; an image with another number
  of channels is a :class:`~segloop.errors.DatasetError` naming the case.

BIDS datasets need none of this: each contrast is a case of its own already
(``contrast`` is the BIDS suffix: ``T1w``, ``T2w``, ``T2star``...).

Examples
--------
>>> import numpy as np, pathlib, tempfile
>>> from segloop.io import Case, Image, write_image
>>> path = pathlib.Path(tempfile.mkdtemp()) / "rgb.tif"
>>> write_image(Image(np.arange(24, dtype=np.uint8).reshape(2, 4, 3), channels=True), path)
>>> cases = split_channels([Case("s1_5", "s1", path)], ["t1", "flair", "t1c"])
>>> [(c.id, c.subject, c.contrast, c.channel) for c in cases]
[('s1_5_t1', 's1', 't1', 0), ('s1_5_flair', 's1', 'flair', 1), ('s1_5_t1c', 's1', 't1c', 2)]
>>> cases[1].read_image().array.tolist()
[[1, 4, 7, 10], [13, 16, 19, 22]]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from segloop.errors import DatasetError
from segloop.io import Case, Image

__all__ = ["ChannelCase", "split_channels"]


@dataclasses.dataclass(frozen=True, eq=False)
class ChannelCase(Case):
    """A case whose image is one channel (``channel``) of another case's image."""

    channel: int = 0
    channel_names: tuple[str, ...] = ()
    source_id: str = ""

    def __hash__(self) -> int:
        return hash(self.id)

    def read_image(self, name: str | None = None) -> Image:
        """Channel ``channel`` of the image (or of the extra image ``name``)."""
        image = super().read_image(name)
        n = image.n_channels if image.channels else 1
        if n != len(self.channel_names):
            raise DatasetError(f"case {self.source_id}: its image has {n} channel"
                               f"{'s' * (n != 1)}; data.split_channels names "
                               f"{len(self.channel_names)} ({', '.join(self.channel_names)})",
                               path=image.metadata.get("path"))
        out = image.with_array(image.array[..., self.channel], channels=False)
        out.metadata.update(case=self.id, contrast=self.contrast)
        return out


def split_channels(cases: Sequence[Case], names: Sequence[str] | None) -> list[Case]:
    """Every case as one :class:`ChannelCase` per name (``names`` None: the cases as they are)."""
    if not names:
        return list(cases)
    out: list[Case] = []
    for case in cases:
        base = {f.name: getattr(case, f.name) for f in dataclasses.fields(Case)}
        for i, name in enumerate(names):
            out.append(ChannelCase(**{**base, "id": f"{case.id}_{name}", "contrast": name,
                                      "metadata": {**case.metadata, "contrast": name}},
                                   channel=i, channel_names=tuple(names), source_id=case.id))
    return out
