"""The served model's hub with FiLM and cascade models: metadata per case, clear refusals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import film_checkpoint, write_bids_contrasts
from segloop.errors import InvalidArgumentError
from segloop.learn.cascade import embedded_locate
from segloop.learn.checkpoint import save_checkpoint
from segloop.learn.config import load_config
from segloop.learn.data import Volume
from segloop.learn.networks import build_network
from segloop.learn.strategies import rank
from segloop.server.datastore import Datastore
from segloop.server.finetune_sessions import FinetuneSessions
from segloop.server.models import ModelHub

TINY = {"channels": [4, 8], "num_res_units": 0, "dropout": 0.0}
CASE = "sub-02_T2w"


@pytest.fixture(scope="module")
def bids(tmp_path_factory):
    """A BIDS folder of T1w / T2w volumes whose subjects' ages are in participants.tsv."""
    return write_bids_contrasts(tmp_path_factory.mktemp("hub") / "bids",
                                {"01": 30, "02": 50, "03": 70})


def _hub(bids, model) -> ModelHub:
    hub = ModelHub(Datastore(bids), model)
    hub.sessions = FinetuneSessions(hub, seconds=60)
    return hub


def test_a_film_model_sees_each_case_metadata(bids, tmp_path):
    cfg = load_config({"data": {"path": str(bids), "split": {"test": 1, "val": 0}},
                       "model": {**TINY, "film": {"fields": ["contrast", {
                           "name": "age", "kind": "numeric"}]}},
                       "output": {"dir": str(tmp_path / "run")}})
    hub = _hub(bids, film_checkpoint(cfg, tmp_path / "film.pt"))
    _, predictor = hub.predictor()
    image = hub.datastore.image(CASE)
    values = hub.meta_values(predictor, CASE)  # the age comes from participants.tsv
    assert float(values["age"]) == 50
    full, own = predictor.meta_vector(image, values), predictor.meta_vector(image)
    assert full[-1] == 0 and own[-1] == 1  # the image alone has no age

    label, _, _, _ = hub.predict(CASE)
    np.testing.assert_array_equal(label, predictor.predict(image, meta=values).label.array)
    maps = hub.uncertainty(CASE, "tta")
    expected = predictor.uncertainty(image, mc=0, tta=True, meta=values).maps
    np.testing.assert_allclose(maps["entropy"], expected["entropy"].array, atol=1e-6)
    array, info = predictor.prepare(image)

    def entropy(meta):
        volume = Volume(CASE, "", array, None, (1.0, 1.0, 1.0), CASE, info.get("slice_axis"),
                        info, meta=meta)
        return rank("entropy", [volume], predictor)[0][1]

    score = hub.score("entropy", CASE)
    assert score == pytest.approx(entropy(full), abs=1e-6)
    assert abs(score - entropy(own)) > 1e-4
    entry, _, _ = hub.sessions.start("ann", CASE, (0, 1), 1)
    np.testing.assert_array_equal(entry.session.meta, full)


def test_a_cascade_is_served_for_predictions_and_random_order_only(bids, tmp_path):
    base = {"data": {"path": "x", "normalize": "none"}, "model": TINY}
    locate = load_config(base)
    segment = load_config({**base, "cascade": {"locate": "stage1.pt", "margin_mm": 4.0}})
    torch.manual_seed(0)
    stage1 = {"config": locate, "in_channels": 1,
              "model": build_network(locate, in_channels=1).state_dict()}
    model = save_checkpoint(tmp_path / "cascade.pt", {
        "config": segment, "in_channels": 1,
        "model": build_network(segment, in_channels=1).state_dict(),
        "cascade_locate": embedded_locate(stage1)})
    hub = _hub(bids, model)
    assert hub.info()["strategies"] == ["random"]
    label, classes, _, _ = hub.predict(CASE)
    assert label.shape == hub.datastore.image(CASE).shape and classes == ["foreground"]
    for strategy in ("entropy", "tta", "coreset"):
        with pytest.raises(InvalidArgumentError, match=f"strategy {strategy}: .*the model is a "
                                                       "cascade, which segments whole images"):
            hub.ranking(strategy)
    with pytest.raises(InvalidArgumentError, match="cascade.pt: .*this model is a cascade"):
        hub.sessions.start("ann", CASE, (0, 1), 1)
