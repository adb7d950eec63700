import numpy as np
import pytest
from scipy import ndimage as ndi

from conftest import needs_shared, shared
from segloop.io import open_dataset
from segloop.simulate import get_driver, noc

# NoC@90 on this lung (chest X-ray 1, its first lung), measured when the test was written:
# boxclicks 1, graphcut 3, livewire 5, geodesic 3, polygon 5
MEASURED = {"boxclicks": 1, "graphcut": 2, "livewire": 5, "geodesic": 3, "polygon": 5}


@pytest.fixture(scope="module")
def lung():
    case = open_dataset(shared("cxr_lungs")).cases[0]
    image = case.read_image()
    pieces, _ = ndi.label(case.read_label().array > 0)
    first = 1 + int(np.argmax(np.bincount(pieces.ravel())[1:] > 1000))
    return image.array, pieces == first, image.spacing


@pytest.mark.shared_data
@needs_shared("cxr_lungs")
@pytest.mark.parametrize("name", sorted(MEASURED))
def test_each_driver_reaches_090_on_a_real_lung(lung, name):
    image, truth, spacing = lung
    trace = get_driver(name)(image, truth, spacing=spacing, max_interactions=20, stop_at=0.9)
    assert trace.dice[-1] >= 0.9, trace.dice
    assert noc(trace.dice, 0.9, 20) == MEASURED[name], trace.dice
