"""FiLM through the pipeline: split channels, BIDS metadata, training, checkpoints, predict."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import film_checkpoint, write_bids_contrasts
from segloop.cli.main import main
from segloop.data import phantom_2d
from segloop.errors import DatasetError
from segloop.io import Image, read_image, write_image
from segloop.learn.checkpoint import load_checkpoint, save_checkpoint
from segloop.learn.config import load_config
from segloop.learn.data import prepare_data
from segloop.learn.networks import build_network
from segloop.learn.predict import load_model
from segloop.learn.train import train

NAMES = ["a", "b", "c"]
TINY = {"channels": [4, 8], "num_res_units": 0, "dropout": 0.0}


def _write_rgb(root: Path, n: int) -> Path:
    """``n`` phantoms as RGB PNGs whose channels are 3 "contrasts": a, 1 - a, a / 2."""
    for i in range(n):
        ph = phantom_2d((32, 32), seed=i, n_blobs=1, thin_structures=False)
        a = np.clip(ph.image, 0, 1)
        rgb = np.stack([a, 1 - a, 0.5 * a], axis=-1)
        write_image(Image((rgb * 255).astype(np.uint8), channels=True),
                    root / "images" / f"c{i}.png")
        write_image(Image((ph.label > 0).astype(np.uint8), kind="label"),
                    root / "labels" / f"c{i}.png")
    return root


@pytest.fixture(scope="module")
def rgb(tmp_path_factory) -> Path:
    return _write_rgb(tmp_path_factory.mktemp("rgb"), 5)


def _config(root: Path, out: Path, *, film=True, **data):
    raw = {"data": {"path": str(root), "split_channels": NAMES,
                    "split": {"test": 1, "val": 1}, **data},
           "model": dict(TINY), "augmentation": {"enabled": False},
           "training": {"epochs": 2, "iterations_per_epoch": 2, "batch_size": 4, "threads": 1},
           "output": {"dir": str(out), "tensorboard": False}}
    if film:
        raw["model"]["film"] = {"fields": ["contrast"], **(film if isinstance(film, dict)
                                                           else {})}
    return load_config(raw)


def test_split_channels_makes_one_single_channel_case_per_channel(rgb, tmp_path):
    data = prepare_data(_config(rgb, tmp_path / "run", film=False), log=lambda _: None)
    volumes = data.train + data.val + data.test
    assert sorted(v.id for v in volumes) == sorted(f"c{i}_{n}" for i in range(5) for n in NAMES)
    assert data.in_channels == 1 and "metadata" not in data.preprocess
    assert all(v.image.shape == (1, 32, 32) and v.meta is None for v in volumes)
    for part in (data.train, data.val, data.test):  # a case's channels stay together
        cases = {v.id[:2] for v in part}
        assert all(f"{c}_{n}" in {v.id for v in part} for c in cases for n in NAMES)
    by_id = {v.id: v for v in volumes}
    a, b = by_id["c0_a"].image.ravel(), by_id["c0_b"].image.ravel()
    assert np.corrcoef(a, b)[0, 1] < -0.99  # b is 1 - a
    assert np.array_equal(by_id["c0_a"].label, by_id["c0_b"].label)
    with pytest.raises(DatasetError, match=r"case c\d: its image has 3 channels; "
                       r"data.split_channels names 2 \(x, y\)"):
        prepare_data(_config(rgb, tmp_path / "two", film=False, split_channels=["x", "y"]),
                     log=lambda _: None)


def test_film_data_carry_their_contrast_vectors(rgb, tmp_path):
    lines = []
    data = prepare_data(_config(rgb, tmp_path / "run"), log=lines.append)
    spec = data.preprocess["metadata"]
    assert spec["fields"] == [{"name": "contrast", "kind": "categorical", "categories": NAMES}]
    assert "metadata: contrast (a, b, c); 0 missing values" in lines
    for v in data.train + data.val + data.test:
        assert v.meta.tolist() == [float(v.id.endswith(f"_{n}")) for n in NAMES] + [0.0]
    with pytest.raises(DatasetError, match=r"case c\d_[abc]: metadata field 'contrast' has the "
                       r"value '[abc]', unknown to the model \(known: x, y\)"):
        prepare_data(_config(rgb, tmp_path / "run", film={"fields": [
            {"name": "contrast", "categories": ["x", "y"]}]}), log=lambda _: None)


def test_bids_contrasts_and_participants_columns_are_metadata(tmp_path):
    root = write_bids_contrasts(tmp_path / "bids", {"01": 30, "02": 50, "03": "n/a"})
    raw = {"data": {"path": str(root), "split": {"test": 1, "val": 0}},
           "model": {**TINY, "film": {"fields": ["contrast", {"name": "age",
                                                             "kind": "numeric"}]}},
           "output": {"dir": str(tmp_path / "run")}}
    data = prepare_data(load_config(raw), log=lambda _: None)
    spec = data.preprocess["metadata"]
    assert spec["fields"][0]["categories"] == ["T1w", "T2w"] and spec["size"] == 5
    volumes = {v.id: v for v in data.train + data.test}
    assert len(volumes) == 6
    assert volumes["sub-03_T2w"].meta.tolist() == [0, 1, 0, 0, 1]  # age n/a: missing
    age = volumes["sub-01_T1w"].meta[3] * spec["fields"][1]["std"] + spec["fields"][1]["mean"]
    assert volumes["sub-01_T1w"].meta[:3].tolist() == [1, 0, 0] and age == pytest.approx(30)
    raw["model"]["film"]["on_missing"] = "error"
    with pytest.raises(DatasetError, match="case sub-03_T[12]w: no value for metadata field "
                       "'age'"):
        prepare_data(load_config(raw), log=lambda _: None)


def test_film_trains_checkpoints_and_predicts_with_metadata(rgb, tmp_path):
    cfg = _config(rgb, tmp_path / "run")
    result = train(cfg, log=lambda _: None)
    assert result["epochs"] == 2 and len(result["per_case"]) == 3
    assert {c["id"][3:] for c in result["per_case"]} == set(NAMES)
    ck = load_checkpoint(tmp_path / "run" / "best.pt")
    assert ck["preprocess"]["metadata"]["fields"][0]["categories"] == NAMES
    assert any(k.startswith("film.") for k in ck["model"])
    predictor = load_model(tmp_path / "run" / "best.pt", device="cpu")
    assert predictor.meta_dim == 4
    image = read_image(rgb / "images" / "c0.png")
    single = image.with_array(image.array[..., 1], channels=False)
    pred = predictor.predict(single, meta={"contrast": "b"}, soft=True)
    assert pred.label.shape == (32, 32) and pred.probabilities.array.shape == (32, 32, 2)
    vectors = [predictor.meta_vector(single, m).tolist()
               for m in ({"contrast": "b"}, {"contrast": "C"}, None)]
    assert vectors == [[0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]
    unc = predictor.uncertainty(single, tta=True, meta={"contrast": "b"})
    assert unc.n_samples == 4


def _perturbed_checkpoint(rgb: Path, path: Path) -> Path:
    """A FiLM checkpoint whose generator is far from zero (metadata changes outputs)."""
    return film_checkpoint(_config(rgb, path.parent / "unused"), path)


def test_predict_cli_takes_metadata_per_input_and_per_case(rgb, tmp_path, capsys):
    model = _perturbed_checkpoint(rgb, tmp_path / "film.pt")
    single = _single(rgb, tmp_path / "in" / "s.png")
    probs = {}
    for value in ("a", "b"):
        out = tmp_path / f"out_{value}"
        assert main(["predict", "--model", str(model), "--input", str(single),
                     "--output", str(out), "--soft", "--meta", f"contrast={value}"]) == 0
        probs[value] = read_image(out / "s_prob.png").array.astype(float)
    assert np.abs(probs["a"] - probs["b"]).max() > 100  # 16-bit PNG: p * 65535
    assert main(["predict", "--model", str(model), "--input", str(rgb), "--output",
                 str(tmp_path / "cases")]) == 0
    written = sorted(p.name for p in (tmp_path / "cases").iterdir())
    assert written == sorted(f"c{i}_{n}_seg.png" for i in range(5) for n in NAMES)
    capsys.readouterr()
    # each case brings its own contrast: c1_a as a case equals s.png told contrast=a
    assert main(["predict", "--model", str(model), "--input", str(rgb), "--output",
                 str(tmp_path / "soft"), "--soft"]) == 0
    case_a = read_image(tmp_path / "soft" / "c1_a_prob.png").array.astype(float)
    assert np.array_equal(case_a, probs["a"])


def _single(rgb: Path, path: Path) -> Path:
    image = read_image(rgb / "images" / "c1.png")
    write_image(image.with_array(image.array[..., 0], channels=False), path)
    return path


def test_predict_cli_refuses_meta_without_equals(rgb, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        main(["predict", "--model", "m.pt", "--input", "s.png", "--output", str(tmp_path),
              "--meta", "contrast"])
    assert info.value.code == 2
    assert "expected KEY=VALUE (e.g. contrast=T2w), got 'contrast'" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--meta", "contrat=a"], "--meta: unknown field 'contrat' (the model's fields: contrast)"),
    (["--meta", "contrast=pd"], "metadata field 'contrast' has the value 'pd', unknown to the "
                                "model (known: a, b, c)"),
    (["--meta", "contrast=a", "--meta", "contrast=b"], "--meta contrast: given twice"),
])
def test_predict_cli_refuses_bad_metadata(rgb, tmp_path, capsys, args, message):
    model = _perturbed_checkpoint(rgb, tmp_path / "film.pt")
    image = _single(rgb, tmp_path / "s.png")
    assert main(["predict", "--model", str(model), "--input", str(image), "--output",
                 str(tmp_path / "out"), *args]) == 1
    assert message in " ".join(capsys.readouterr().err.split())
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_predict_cli_refuses_metadata_for_a_plain_model(rgb, tmp_path, capsys):
    cfg = _config(rgb, tmp_path / "unused", film=False)
    net = build_network(cfg, in_channels=1)
    model = save_checkpoint(tmp_path / "plain.pt", {"config": cfg, "in_channels": 1,
                                                    "model": net.state_dict()})
    write_image(Image(np.zeros((8, 8), np.uint8)), tmp_path / "s.png")
    assert main(["predict", "--model", str(model), "--input", str(tmp_path / "s.png"),
                 "--output", str(tmp_path / "out"), "--meta", "contrast=a"]) == 1
    assert "--meta: the model (plain.pt) takes no metadata" in capsys.readouterr().err


def test_predict_names_split_channels_when_given_the_multi_channel_file(rgb, tmp_path, capsys):
    model = _perturbed_checkpoint(rgb, tmp_path / "film.pt")
    assert main(["predict", "--model", str(model), "--input", str(rgb / "images" / "c0.png"),
                 "--output", str(tmp_path / "out"), "--meta", "contrast=a"]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "has 3 channels; the model (film.pt) takes 1 (data.split_channels: one of a, b, c" in err


def test_preannotate_conditions_each_case_on_its_own_metadata(tmp_path):
    from segloop.io import open_dataset
    from segloop.learn.data import Volume
    from segloop.learn.queue import preannotate
    from segloop.learn.strategies import rank

    root = write_bids_contrasts(tmp_path / "bids", {"01": 30, "02": 50, "03": 70})
    cfg = load_config({"data": {"path": str(root), "split": {"test": 1, "val": 0}},
                       "model": {**TINY, "film": {"fields": ["contrast", {
                           "name": "age", "kind": "numeric"}]}},
                       "output": {"dir": str(tmp_path / "run")}})
    predictor = load_model(film_checkpoint(cfg, tmp_path / "film.pt"), device="cpu")
    case = {c.id: c for c in open_dataset(root).cases}["sub-02_T2w"]
    image = case.read_image()
    values = predictor.case_meta(case)  # participants.tsv gives the age, BIDS the contrast
    assert values["contrast"] == "T2w" and float(values["age"]) == 50
    own = predictor.meta_vector(image)  # the file name alone: no age
    full = predictor.meta_vector(image, values)
    assert own[-1] == 1 and full[-1] == 0 and own[:3].tolist() == full[:3].tolist()
    # a value given as None is no value: the image's own (its contrast) stands
    assert predictor.meta_vector(image, {"contrast": None, "age": 50}).tolist() == full.tolist()
    queue = preannotate(predictor, root, tmp_path / "queue", log=None)
    label = read_image(tmp_path / "queue" / "predictions" / "sub-02_T2w_seg.nii.gz").array
    np.testing.assert_array_equal(label, predictor.predict(image, meta=values).label.array)
    array, info = predictor.prepare(image)

    def entropy(meta):
        volume = Volume(case.id, "", array, None, (1.0, 1.0, 1.0), "", info.get("slice_axis"),
                        info, meta=meta)
        return rank("entropy", [volume], predictor)[0][1]

    score = next(item.score for item in queue.items if item.id == case.id)
    assert score == pytest.approx(entropy(full), abs=1e-6)
    assert abs(score - entropy(own)) > 1e-4  # what it scored without the case's age
