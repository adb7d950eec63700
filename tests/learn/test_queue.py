"""Pre-annotation queue: predictions on the input grid, rank order, files, versions, errors."""

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import write_phantom_pairs
from segloop.errors import InvalidArgumentError, OutputExistsError
from segloop.io import read_image
from segloop.learn.config import load_config
from segloop.learn.data import Volume
from segloop.learn.predict import load_model
from segloop.learn.queue import preannotate
from segloop.learn.strategies import rank
from segloop.learn.train import train


def _quiet(line: str) -> None:
    pass


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    """A checkpoint of 3 training iterations on 4 phantoms (dropout 0.2), and the dataset."""
    root = tmp_path_factory.mktemp("queue")
    data = write_phantom_pairs(root / "data", 6, (32, 32))
    cfg = load_config({"data": {"path": str(data), "split": {"test": 1, "val": 1}},
                       "model": {"channels": [4, 8], "num_res_units": 0, "dropout": 0.2},
                       "augmentation": {"enabled": False},
                       "training": {"epochs": 1, "iterations_per_epoch": 3, "batch_size": 2,
                                    "threads": 1, "resume": False},
                       "output": {"dir": str(root / "run"), "tensorboard": False}})
    train(cfg, log=_quiet)
    return root / "run" / "last.pt", data


def test_a_folder_is_predicted_ranked_and_exported(trained, tmp_path):
    ckpt, data = trained
    lines = []
    queue = preannotate(ckpt, data / "images", tmp_path / "q", log=lines.append)
    names = sorted(p.name for p in (data / "images").iterdir())
    assert sorted(i.id for i in queue.items) == names and len(lines) == 6
    assert [i.rank for i in queue.items] == [1, 2, 3, 4, 5, 6]
    scores = [i.score for i in queue.items]
    assert scores == sorted(scores, reverse=True)
    # the order and scores are those of the strategy on the pre-processed images
    model = load_model(ckpt)
    pool = []
    for name in names:
        array, info = model.prepare(read_image(data / "images" / name))
        pool.append(Volume(name, "", array, None, (1.0, 1.0), "", info["slice_axis"]))
    expected = rank("entropy", pool, model)
    assert [(i.id, i.score) for i in queue.items] == [(n, pytest.approx(s)) for n, s in expected]
    # files: predictions on the input's grid, queue.json and queue.csv in rank order
    first = queue.items[0]
    assert first.images == [str(data / "images" / first.id)]
    assert first.prediction == str(tmp_path / "q" / "predictions" / first.id.replace(".png",
                                                                                    "_seg.png"))
    label = read_image(first.prediction, kind="label")
    assert label.shape == (32, 32) and set(np.unique(label.array)) <= {0, 1}
    np.testing.assert_array_equal(label.array,
                                  model.predict(read_image(first.images[0])).label.array)
    saved = json.loads((tmp_path / "q" / "queue.json").read_text())
    assert saved["strategy"] == "entropy" and saved["model"] == str(ckpt) and saved["seed"] == 0
    assert saved["created"].endswith("+00:00")
    assert [i["id"] for i in saved["items"]] == [i.id for i in queue.items]
    assert set(saved["items"][0]) == {"rank", "id", "images", "prediction", "score"}
    with open(tmp_path / "q" / "queue.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["id"] for r in rows] == [i.id for i in queue.items]
    assert list(rows[0]) == ["rank", "id", "score", "prediction", "images"]
    assert float(rows[0]["score"]) == pytest.approx(first.score)


def test_a_dataset_folder_is_ranked_by_case_with_a_loaded_predictor(trained, tmp_path):
    ckpt, data = trained
    model = load_model(ckpt)
    queue = preannotate(model, data, tmp_path / "q", strategy="random", seed=5, log=None)
    ids = [f"c{i}" for i in range(6)]
    assert [i.id for i in queue.items] == [ids[k] for k in np.random.default_rng(5).permutation(6)]
    assert queue.model == str(ckpt)
    assert all(Path(i.prediction).exists() and Path(i.prediction).name == f"{i.id}_seg.png"
               for i in queue.items)
    assert queue.items[0].images == [str(data / "images" / f"{queue.items[0].id}.png")]


def test_coreset_with_labelled_images_and_the_other_strategies(trained, tmp_path):
    ckpt, data = trained
    pool, known = tmp_path / "pool", tmp_path / "known"
    pool.mkdir()
    known.mkdir()
    for i in range(6):
        shutil.copy(data / "images" / f"c{i}.png", (pool if i < 4 else known) / f"c{i}.png")
    shutil.copy(data / "images" / "c4.png", pool / "c4copy.png")  # a copy of a labelled one
    queue = preannotate(ckpt, pool, tmp_path / "q", strategy="coreset", labelled=known,
                        log=None)
    last = queue.items[-1]
    assert last.id == "c4copy.png" and last.score == pytest.approx(0, abs=1e-6)
    saved = json.loads(queue.json_path.read_text())
    assert saved["labelled"] == ["labelled/c4.png", "labelled/c5.png"]
    for strategy in ("mc_dropout", "tta"):
        q = preannotate(ckpt, pool, tmp_path / strategy, strategy=strategy, log=None)
        assert sorted(i.id for i in q.items) == sorted(p.name for p in pool.iterdir())


def test_existing_outputs_are_refused_then_kept_as_versions(trained, tmp_path):
    ckpt, data = trained
    out = tmp_path / "q"
    preannotate(ckpt, data / "images" / "c1.png", out, log=None)
    with pytest.raises(OutputExistsError, match=r"c1_seg.png: exists; pass --overwrite"):
        preannotate(ckpt, data / "images" / "c1.png", out, log=None)
    (out / "predictions" / "c1_seg.png").unlink()
    with pytest.raises(OutputExistsError, match=r"queue.json: exists"):
        preannotate(ckpt, data / "images" / "c1.png", out, log=None)
    assert not (out / "predictions" / "c1_seg.png").exists()  # refused before computing
    preannotate(ckpt, data / "images" / "c1.png", out, overwrite=True, log=None)
    preannotate(ckpt, data / "images" / "c1.png", out, overwrite=True, log=None)
    assert (out / "queue.json.~1~").exists() and (out / "queue.csv.~1~").exists()
    assert (out / "predictions" / "c1_seg.png.~1~").exists()


def test_bad_strategies_fail_before_anything_is_written(trained, tmp_path):
    ckpt, data = trained
    with pytest.raises(InvalidArgumentError, match="strategy: unknown 'margin'; choose one of"):
        preannotate(ckpt, data / "images", tmp_path / "q", strategy="margin", log=None)
    model = load_model(ckpt)
    for m in model.network.modules():
        if hasattr(m, "p") and isinstance(m.p, float):
            m.p = 0.0
    with pytest.raises(InvalidArgumentError, match="mc_dropout needs a model trained with"):
        preannotate(model, data / "images", tmp_path / "q", strategy="mc_dropout", log=None)
    assert not (tmp_path / "q").exists()
