"""The metadata encoding and its fallbacks (segloop.learn.metadata)."""

from __future__ import annotations

import numpy as np
import pytest

from segloop.errors import DatasetError, InvalidArgumentError
from segloop.learn.config import FilmConfig
from segloop.learn.metadata import MetadataEncoder, MetadataWarning, build_spec


def _film(**kw) -> FilmConfig:
    return FilmConfig(**{"fields": ["contrast", {"name": "age", "kind": "numeric"}], **kw})


def test_spec_learns_sorted_categories_and_training_statistics():
    spec = build_spec(_film(), {"a": {"contrast": "T2w", "age": 20}, "b": {"contrast": "T1w",
                                                                          "age": "40"},
                                "c": {"contrast": "t1w", "age": None}})
    assert spec["fields"] == [
        {"name": "contrast", "kind": "categorical", "categories": ["T1w", "T2w"]},
        {"name": "age", "kind": "numeric", "mean": 30.0, "std": 10.0}]
    assert spec["size"] == 5 and spec["on_missing"] == "missing"
    enc = MetadataEncoder(spec)
    assert enc.blocks == [(0, 3), (3, 5)]
    assert enc.encode({"contrast": "T2W", "age": 35}).tolist() == [0, 1, 0, 0.5, 0]
    assert enc.encode({}).tolist() == enc.missing().tolist() == [0, 0, 1, 0, 1]
    assert enc.decode(enc.encode({"contrast": "T1w", "age": 25})) == {"contrast": "T1w",
                                                                      "age": 25.0}
    given = build_spec(FilmConfig(fields=[{"name": "contrast", "categories": ["b", "a", "c"]}]),
                       {"x": {"contrast": "a"}})
    assert given["fields"][0]["categories"] == ["b", "a", "c"] and given["size"] == 4
    same = build_spec(_film(), {"a": {"contrast": "x", "age": 3}, "b": {"contrast": "x",
                                                                        "age": 3}})
    assert same["fields"][1]["std"] == 1.0  # every case agrees: no division by zero


def test_missing_values_fall_back_or_are_refused_naming_case_and_field():
    values = {"a": {"contrast": "T1w", "age": 3}, "b": {"contrast": None, "age": 4}}
    with pytest.raises(DatasetError, match=r"case b: no value for metadata field 'contrast'"):
        build_spec(_film(on_missing="error"), values)
    enc = MetadataEncoder(build_spec(_film(), values))
    assert enc.encode({"contrast": " ", "age": "nan"}).tolist() == enc.missing().tolist()
    strict = MetadataEncoder({**enc.spec, "on_missing": "error"})
    with pytest.raises(DatasetError, match=r"scan.nii.gz: no value for metadata field 'age'"):
        strict.encode({"contrast": "T1w"}, where="scan.nii.gz")
    with pytest.raises(DatasetError, match="no training case has a value"):
        build_spec(_film(), {"a": {"contrast": None, "age": 1}})


def test_unknown_categories_error_or_warn_and_non_numbers_are_refused():
    spec = build_spec(_film(), {"a": {"contrast": "T1w", "age": 3}})
    with pytest.raises(DatasetError, match=r"case z: metadata field 'contrast' has the value "
                       r"'PD', unknown to the model \(known: T1w\)"):
        MetadataEncoder(spec).encode({"contrast": "PD"}, where="case z")
    lenient = MetadataEncoder({**spec, "on_unknown": "missing"})
    with pytest.warns(MetadataWarning, match="'PD'.*encoded as missing"):
        vector = lenient.encode({"contrast": "PD", "age": 3})
    assert vector.tolist() == [0, 1, 0, 0]
    with pytest.raises(DatasetError, match="'age' is numeric, got 'old'"):
        lenient.encode({"age": "old"}, where="x")
    with pytest.raises(DatasetError, match="case q: metadata field 'age' is numeric"):
        build_spec(_film(), {"q": {"contrast": "a", "age": "old"}})


def test_encoder_refuses_bad_specs_vectors_and_names():
    spec = build_spec(_film(), {"a": {"contrast": "T1w", "age": 3}})
    enc = MetadataEncoder(spec)
    with pytest.raises(InvalidArgumentError, match="--meta: unknown field 'contrat'"):
        enc.check_names({"contrat": "T1w"}, what="--meta")
    with pytest.raises(InvalidArgumentError, match="vector of 3 values; the spec has 4"):
        enc.decode(np.zeros(3))
    with pytest.raises(InvalidArgumentError, match="size 9 but its fields take 4"):
        MetadataEncoder({**spec, "size": 9})
    with pytest.raises(InvalidArgumentError, match="not a metadata spec"):
        MetadataEncoder({"fields": []})
    # a damaged field (a checkpoint's or an exported file's) is refused, not a KeyError later
    contrast, age = spec["fields"]
    for fields in ([{k: v for k, v in contrast.items() if k != "categories"}, age],
                   [contrast, {k: v for k, v in age.items() if k != "std"}],
                   [contrast, {**age, "kind": "ordinal"}], [contrast, "age"],
                   [{**contrast, "categories": []}, age]):
        with pytest.raises(InvalidArgumentError, match="not a metadata spec"):
            MetadataEncoder({**spec, "fields": fields})
