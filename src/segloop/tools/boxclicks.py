"""Box + clicks ("FrameCut"): a GrabCut-like graph cut from a bounding box, corrected by clicks.

Everything outside the box is background. Inside, foreground and background
intensity models (:mod:`segloop.tools.intensity_model`) are fitted, the box
is cut (:mod:`segloop.tools.cutgraph`), the models are refitted on the new
segmentation and the box is cut again, a few times (Rother et al. 2004). The
background model always sees a ring of voxels around the box (a quarter of
the box's size on each side). Unlike GrabCut, the first foreground model is
fitted on the core of the box (the inscribed ellipse/ellipsoid shrunk to
70 %) and the first background model also on the box's corners (outside the
inscribed ellipse): a tight box's centre is mostly object and its corners
mostly background, while fitting the object model on the whole box lets the
background inside the box pass for object (on the four 3D BRATS tumour
boxes of the tests: Dice 0.80-0.92 from the box alone instead of 0.41-0.92,
and a first max-flow up to 10 times faster). Colour images use histograms of
8 bins per channel (the graph cut's 16 spread the few voxels of a box too
thin: 3.8 instead of 4.2 clicks on the polyps, 1.8 instead of 2.4 on the
small nuclei of the clicks benchmark).
After each cut only the largest connected piece (and pieces holding positive
clicks) is kept, and its holes are filled (pieces of background it encloses,
unless a negative click lies in them), for the result and for the next model
fit, so that stray voxels of similar intensity do not teach the foreground
model and noise does not pierce the object (on the 161 objects of the ten
shared 2D datasets, the mean clicks to Dice 0.9 per dataset fell from 3.6
to 3.2). An empty cut is not taken: the
box keeps its previous estimate. If the first cut is empty, it is tried
again once with ``lam`` doubled (a small or faint object: its boundary
outweighs its regional term); if that is empty too (or the box and its ring
have no contrast at all) no mask is invented: :meth:`BoxClicksSession.set_box`
raises, naming the box and the intensities in and around it.

Only the box is a graph: its voxels' edges to the outside become sink
capacities (the outside is fixed background), so the cost of a cut does not
depend on the image size.

A click says "this voxel is foreground" (positive) or "background"
(negative). It becomes a hard seed (a disc/ball of radius ``radius`` mm, or
half the distance from the click to the current boundary if larger, but
never reaching that boundary) plus a soft prior for the clicked class that
decays with the geodesic distance from the click (Price et al. 2010;
:mod:`segloop.tools.click_prior`): within homogeneous tissue it reaches
about as far as the click is from the current boundary, and it stops at
edges. The models are then refitted once. If the prior of a click would
leave nothing of the object, it is halved (up to three times, then dropped);
if its seeds alone would, the click only takes its seeds out of the mask.
Each click changes only terminal capacities, so the max-flow resumes from
the previous one.

References
----------
Rother, C., Kolmogorov, V., Blake, A. (2004). GrabCut: interactive foreground
extraction using iterated graph cuts. SIGGRAPH.
Price, B., Morse, B., Cohen, S. (2010). Geodesic graph cut for interactive
image segmentation. CVPR.

Examples
--------
>>> from segloop.data.phantoms import phantom_2d
>>> ph = phantom_2d((96, 96), seed=2, n_blobs=1, thin_structures=False)
>>> truth = ph.label == 1
>>> ys, xs = np.nonzero(truth)
>>> mask = box_clicks(ph.image, [[ys.min(), xs.min()], [ys.max(), xs.max()]])
>>> bool(2 * (mask & truth).sum() / (mask.sum() + truth.sum()) >= 0.95)
True
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from segloop.errors import InvalidArgumentError
from segloop.tools._edit_checks import as_bool
from segloop.tools.click_prior import Click, click_prior, edge_strength, paint_clicks
from segloop.tools.contour import check_point
from segloop.tools.cut_checks import (
    check_box,
    check_image,
    check_int,
    check_options,
    check_spacing,
    click_list,
    intensities,
    shown,
)
from segloop.tools.cutgraph import CutGraph, box_links, keep_seeded, model_options, tlinks
from segloop.tools.intensity_model import fit_model, quantize
from segloop.tools.path_tree import write_label
from segloop.tools.spec import ToolSpec

__all__ = ["DEFAULT_LAM", "BoxClicksSession", "SPEC", "box_clicks", "fill_holes"]

#: Default weight of the regional term, tuned with the clicks benchmark (``segloop bench
#: clicks``, clicks per object to Dice 0.9, 161 objects of the ten shared 2D datasets and
#: the 3D BRATS tumours): against 0.5 it saves clicks on CT organs (3.7 -> 3.2),
#: FLAIR tumours (2.7 -> 2.4), left-atrium MRI slices (8.5 -> 8.1) and 3D BRATS tumours
#: (11.7 -> 6.3), costs a few on EM cells (3.4 -> 3.6) and DSB nuclei (3.2 -> 3.4).
DEFAULT_LAM = 0.25

_CORE = 0.7  # the first foreground model: the ellipse inscribed in the box, shrunk so much
_COLOUR_BINS = 8  # histogram bins per colour channel (the graph cut's default is 16)
_LAM_RETRIES = 1  # an empty first cut is retried with lam doubled, at most this many times


class BoxClicksSession:
    """Box + clicks segmentation that keeps its graph between clicks.

    Parameters
    ----------
    image : ndarray
        ``(y, x)`` or ``(z, y, x)`` intensities (plus a channel axis).
    spacing : sequence of float, optional
        Voxel size in array order (default 1).
    lam : float
        Weight of the regional term against the boundary term (default
        :data:`DEFAULT_LAM`); a box whose first cut is empty is cut again
        with twice this weight.
    sigma, model, connectivity
        As in :func:`segloop.tools.graphcut.graph_cut`.
    channel_axis : int, optional
        Axis of the colour channels.
    iterations : int
        Model refits and cuts after setting the box (fewer if it converges),
        1..100.
    radius : float
        Smallest radius of a click's hard seed, in physical units (the seed
        never reaches a voxel that already has the clicked label).

    Attributes
    ----------
    box : tuple of ndarray or None
        ``(lo, hi)``: the box's first voxel and one past its last, per axis.
    clicks : list
        The clicks so far, oldest first, each with ``point`` (image
        coordinates) and ``positive``.

    Examples
    --------
    >>> from segloop.data.phantoms import phantom_2d
    >>> ph = phantom_2d((96, 96), seed=0, n_blobs=1, thin_structures=False)
    >>> s = BoxClicksSession(ph.image)
    >>> ys, xs = np.nonzero(ph.label == 1)
    >>> first = s.set_box([[ys.min(), xs.min()], [ys.max(), xs.max()]])
    >>> after = s.add_click([int(ys.mean()), int(xs.mean())], positive=True)
    >>> bool(after[int(ys.mean()), int(xs.mean())]), len(s.clicks)
    (True, 1)
    >>> bool((s.undo() == first).all()), len(s.clicks)
    (True, 0)
    """

    def __init__(self, image, *, spacing=None, lam: float = DEFAULT_LAM, sigma=None,
                 model: str = "histogram", channel_axis=None, iterations: int = 5,
                 radius: float = 1.0, connectivity: int = 1):
        self._pixels = check_image(image, channel_axis=channel_axis)
        self.shape = self._pixels.shape[:-1]
        self.spacing = check_spacing(spacing, len(self.shape))
        check_options(lam=lam, sigma=sigma, model=model, connectivity=connectivity,
                      radius=radius, ndim=len(self.shape))
        self.lam, self.sigma, self.model = float(lam), sigma, model
        self._lam = self.lam  # the lam of the current box (raised if its first cut is empty)
        self._sigma = sigma  # as given (None: from each box)
        self.iterations = check_int(iterations, "iterations", 1, 100)
        self.radius, self.connectivity = float(radius), int(connectivity)
        self.box: tuple[np.ndarray, np.ndarray] | None = None
        self.clicks: list[Click] = []
        self._box_mask: np.ndarray | None = None

    @property
    def mask(self) -> np.ndarray | None:
        """The current segmentation, full size (None before :meth:`set_box`)."""
        if self._box_mask is None:
            return None
        out = np.zeros(self.shape, dtype=bool)
        out[self._inner] = self._box_mask
        return out

    # ----------------------------------------------------------------- box

    def set_box(self, box) -> np.ndarray:
        """Segment inside ``box`` (inclusive corners ``[[y0, x0], [y1, x1]]``); clears clicks.

        Raises
        ------
        segloop.errors.InvalidArgumentError
            A bad box, a box without contrast (every voxel in and around it
            alike) or one in which the cut finds no object. The session is
            then left as it was.
        """
        lo, hi = check_box(box, self.shape)
        saved = dict(self.__dict__)
        try:
            return self._set_box(box, lo, hi)
        except InvalidArgumentError:
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise

    def _set_box(self, box, lo, hi) -> np.ndarray:
        self.box, self.clicks = (lo, hi), []
        self._inner = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
        ring = np.maximum(np.ceil(0.25 * (hi - lo)), 4).astype(np.int64)
        clo, chi = np.maximum(lo - ring, 0), np.minimum(hi + ring, self.shape)
        crop = self._pixels[tuple(slice(a, b) for a, b in zip(clo, chi, strict=True))]
        if intensities(crop, constant=True):
            raise InvalidArgumentError(
                f"box={shown(box)} has no contrast: every voxel in and around it has intensity "
                f"{intensities(crop, constant=True)} (image range {intensities(self._pixels)})")
        in_crop = tuple(slice(a - c, b - c) for a, b, c in zip(lo, hi, clo, strict=True))
        inside = np.zeros(crop.shape[:-1], dtype=bool)
        inside[in_crop] = True
        self._quantized = quantize(crop, channel_axis=-1)
        self._codes = self._quantized.codes[in_crop]
        self._px, self._ring = crop[in_crop], crop[~inside]
        self._weights, self._out_sink, self._hard, self.sigma = box_links(
            self._pixels, lo, hi, spacing=self.spacing, sigma=self._sigma,
            connectivity=self.connectivity)
        shape = self._px.shape[:-1]
        self._fg, self._bg = np.zeros(shape, bool), np.zeros(shape, bool)
        self._prior = np.zeros(shape, np.float32)  # click priors: background - foreground cost
        self._grad = None
        self._graph, self._diff = None, None
        grids = np.ogrid[tuple(slice(0, n) for n in shape)]
        radius2 = sum(((g - (n - 1) / 2) / (n / 2)) ** 2 for g, n in zip(grids, shape, strict=True))
        mask, corners = radius2 <= _CORE**2, radius2 > 1.0
        self._lam = self.lam
        for it in range(self.iterations):
            self._diff = self._fit(mask, corners if it == 0 else None)
            new = self._solve()
            for _ in range(_LAM_RETRIES if it == 0 else 0):  # a small or faint object
                if new.any():
                    break
                self._lam *= 2.0
                new = self._solve()
            if not new.any():
                if it == 0:
                    raise InvalidArgumentError(
                        f"box={shown(box)}: the cut finds no object in it (intensities "
                        f"{intensities(self._px)} inside, {intensities(self._ring)} around it)")
                break
            changed = np.count_nonzero(new != mask)
            mask = new
            if changed <= 1e-3 * mask.size:
                break
        self._box_mask = mask
        return self.mask

    # ----------------------------------------------------------------- cuts

    def _fit(self, mask, bg=None):
        """Background minus foreground cost from models of ``mask`` (+ seeds) and ``bg``.

        ``bg`` defaults to the rest of the box; the ring around the box is
        always background.
        """
        fg = (mask | self._fg) & ~self._bg
        bg = ~fg if bg is None else bg
        if not fg.any():
            return self._diff
        q = self._quantized
        opts = model_options(self.model, self._px.shape[-1])
        if self.model == "histogram" and self._px.shape[-1] > 1:
            opts["bins"] = _COLOUR_BINS
        fit = [fit_model(self.model, s, lo=q.lo, hi=q.hi, **opts)
               for s in (self._px[fg], np.concatenate([self._ring, self._px[bg]]))]
        return q.cost_difference(*fit, codes=self._codes)

    def _solve(self) -> np.ndarray:
        source, sink = tlinks(self._diff + self._prior, lam=self._lam, hard=self._hard,
                              fg_seeds=self._fg, bg_seeds=self._bg)
        sink += self._out_sink
        if self._graph is None:
            self._graph = CutGraph(self._weights, source, sink)
            del self._weights
        else:
            self._graph.update(source, sink)
        mask = keep_seeded(self._graph.mask(), self._fg, largest=True,
                           connectivity=self.connectivity)
        return fill_holes(mask, self._bg, connectivity=self.connectivity)

    # ----------------------------------------------------------------- clicks

    def add_click(self, point, positive: bool = True) -> np.ndarray:
        """Add a positive (foreground) or negative click and return the corrected mask.

        Raises
        ------
        segloop.errors.InvalidArgumentError
            No box yet, ``point`` outside the image or the box, or
            ``positive`` not a bool.
        """
        return self._add_click(point, positive, "point")

    def _add_click(self, point, positive, name: str) -> np.ndarray:
        if self.box is None:
            raise InvalidArgumentError("set a box before clicking (BoxClicksSession.set_box)")
        positive = as_bool(positive, "positive")
        p = self._box_point(point, name)
        click = self._click(p, positive)
        self.clicks.append(click)
        self._apply_clicks()
        mask = self._solve()
        for factor in (0.5, 0.5, 0.5, 0.0):  # a click's prior must not wipe out the object
            if mask.any():
                break
            click.reach.prior[...] *= np.float32(factor)
            self._apply_clicks()
            mask = self._solve()
        if not mask.any() and self._box_mask is not None:  # its seeds alone do: take them out
            mask = keep_seeded(self._box_mask & ~self._bg, self._fg, largest=True,
                               connectivity=self.connectivity)
        if mask.any():
            self._diff = self._fit(mask)
            refined = self._solve()
            mask = refined if refined.any() else mask
        self._box_mask = mask
        return self.mask

    def undo(self) -> np.ndarray:
        """Remove the last click; return the mask as it was before it."""
        if not self.clicks:
            raise InvalidArgumentError("no click to undo")
        click = self.clicks.pop()
        self._box_mask, self._diff = click.before
        self._apply_clicks()
        self._solve()  # keep the graph's flow in step with the restored capacities
        return self.mask

    def _box_point(self, point, name: str) -> np.ndarray:
        """``point`` (image coordinates) checked to lie in the box, in box coordinates."""
        idx = np.asarray(check_point(point, self.shape, name))
        lo, hi = self.box
        if np.any(idx < lo) or np.any(idx >= hi):
            raise InvalidArgumentError(f"{name}={shown(point)} lies outside the box "
                                       f"{[lo.tolist(), (hi - 1).tolist()]}")
        return idx - lo

    def _click(self, p: np.ndarray, positive: bool) -> Click:
        """Hard seed ball and geodesic soft prior of a click at ``p`` (box coordinates)."""
        if self._grad is None:
            self._grad = edge_strength(self._px, spacing=self.spacing)
        reach = click_prior(self._box_mask, p, positive, gradient=self._grad,
                            spacing=self.spacing, radius=self.radius)
        point = tuple(int(v) for v in p + self.box[0])
        return Click(point, positive, reach, (self._box_mask, self._diff))

    def _apply_clicks(self):
        """Seeds and priors of all clicks, in order (a later click wins)."""
        paint_clicks(self.clicks, self._fg, self._bg, self._prior)


def fill_holes(mask: np.ndarray, keep_out=None, *, connectivity: int = 1) -> np.ndarray:
    """``mask`` with its holes filled, except holes that hold a voxel of ``keep_out``.

    A hole is a connected piece of background that does not reach the
    border of the array. Background connects as the complement of the
    object's ``connectivity``: through faces only when the object connects
    through more (an 8-connected object has 4-connected holes), through
    edges and corners too when the object connects through faces only.

    Examples
    --------
    >>> ring = np.zeros((5, 7), bool); ring[:, :3] = True; ring[:, 4:] = True
    >>> ring[0, 3] = ring[4, 3] = True; ring[0, 5] = False
    >>> fill_holes(ring).astype(int)
    array([[1, 1, 1, 1, 1, 0, 1],
           [1, 1, 1, 1, 1, 1, 1],
           [1, 1, 1, 1, 1, 1, 1],
           [1, 1, 1, 1, 1, 1, 1],
           [1, 1, 1, 1, 1, 1, 1]])
    >>> seeds = np.zeros_like(ring); seeds[2, 3] = True
    >>> bool(fill_holes(ring, seeds)[2, 3])
    False
    """
    ndim = mask.ndim
    structure = ndi.generate_binary_structure(ndim, 1 if connectivity > 1 else ndim)
    holes, n = ndi.label(~mask, structure)
    if n == 0:
        return mask
    open_ = np.zeros(n + 1, dtype=bool)  # pieces touching the border are not holes
    for axis in range(ndim):
        for end in (0, -1):
            open_[np.take(holes, end, axis=axis)] = True
    if keep_out is not None:
        open_[holes[keep_out]] = True
    if open_[1:].all():
        return mask
    open_[0] = True
    return mask | ~open_[holes]


def box_clicks(image, box, *, positive=(), negative=(), spacing=None, iterations: int = 5,
               lam: float = DEFAULT_LAM, sigma=None, model: str = "histogram",
               channel_axis=None, radius: float = 1.0, connectivity: int = 1) -> np.ndarray:
    """Segment the object in a bounding box, optionally corrected by clicks.

    Parameters
    ----------
    image : ndarray
        ``(y, x)`` or ``(z, y, x)`` intensities; with ``channel_axis``, colour.
    box : array_like
        Two opposite corners ``[[y0, x0], [y1, x1]]`` (``[[z0, y0, x0], ...]``
        in 3D), both **inclusive** (the voxels a user drags from and to), in
        any order. It must span at least 2 voxels on every axis.
    positive, negative : sequence of points
        Clicks ``[[y, x], ...]`` inside the box on missed object / on wrongly
        included background (one click is ``[[y, x]]``). They are applied one
        at a time, positive ones first, as :meth:`BoxClicksSession.add_click`
        does; an error names the click, e.g. ``negative[1]``.
    spacing : sequence of float, optional
        Voxel size in array order (default 1).
    iterations : int
        GrabCut iterations (model refit + cut) after the box.
    lam, radius
        As in :class:`BoxClicksSession`.
    sigma, model, connectivity
        As in :func:`segloop.tools.graphcut.graph_cut`.
    channel_axis : int, optional
        Axis of the colour channels.

    Returns
    -------
    ndarray of bool
        The foreground (always inside the box).

    Raises
    ------
    segloop.errors.InvalidArgumentError
        NaN/Inf or non-2D/3D image, a box of zero size, outside the image or
        covering all of it, a box without contrast or in which the cut finds
        no object, a click outside the box, or a bad option.

    Examples
    --------
    >>> img = np.zeros((40, 40)); img[10:30, 12:28] = 1.0
    >>> m = box_clicks(img, [[8, 10], [31, 29]])
    >>> int(m.sum()), bool(m[10:30, 12:28].all())
    (320, True)
    """
    session = BoxClicksSession(image, spacing=spacing, lam=lam, sigma=sigma, model=model,
                               channel_axis=channel_axis, iterations=iterations, radius=radius,
                               connectivity=connectivity)
    clicks = [click_list(points, name, len(session.shape))
              for points, name in ((positive, "positive"), (negative, "negative"))]
    session.set_box(box)
    for points, name in zip(clicks, ("positive", "negative"), strict=True):
        for i, point in enumerate(points):
            session._add_click(point, name == "positive", f"{name}[{i}]")
    return session.mask


def _apply(image, label, *, spacing, box, positive=(), negative=(), channel_axis=None, value=1,
           **options):
    mask = box_clicks(image, box, positive=positive, negative=negative, spacing=spacing,
                      channel_axis=channel_axis, **options)
    return write_label(mask, label, value)


SPEC = ToolSpec(
    name="boxclicks",
    summary="box + clicks (GrabCut-like): bounding box, then positive/negative clicks (2D/3D)",
    apply=_apply,
    params={
        "box": "two inclusive corners [[y0, x0], [y1, x1]] / [[z0, y0, x0], [z1, y1, x1]]",
        "positive": "clicks on missed object [[y, x], ...] (applied first)",
        "negative": "clicks on wrongly included background [[y, x], ...]",
        "iterations": "model refits after the box (default 5)",
        "lam": f"weight of the intensity term vs the boundary term (default {DEFAULT_LAM})",
        "sigma": "intensity scale of the boundary term (default: from the image)",
        "model": "intensity model: histogram (default) or gmm",
        "radius": "smallest click seed radius in mm (default 1)",
        "connectivity": "1 (4/6-neighbours, default) or ndim (8/26-neighbours)",
        "value": "label value written into --label where the object is (default 1)",
    },
    ndims=(2, 3),
    required=("box",),
)
