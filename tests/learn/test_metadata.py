"""Metadata values, their encoding and its fallbacks (segloop.learn.metadata)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from segloop.errors import DatasetError, FileMissingError, InvalidArgumentError
from segloop.io import Case, Image
from segloop.learn.config import FilmConfig
from segloop.learn.metadata import (
    MetadataEncoder,
    MetadataWarning,
    build_spec,
    case_values,
    field_values,
    image_values,
    read_table,
)


def _film(**kw) -> FilmConfig:
    return FilmConfig(**{"fields": ["contrast", {"name": "age", "kind": "numeric"}], **kw})


def test_values_come_from_the_table_then_the_metadata_then_the_contrast(tmp_path):
    table = tmp_path / "participants.tsv"
    table.write_text("participant_id\tage\tcontrast\nsub-01\t41\tn/a\nsub-02\t\tT1w\n")
    film = _film(table=str(table))
    rows = read_table(film.table)
    assert rows == {"sub-01": {"age": "41", "contrast": "n/a"},
                    "sub-02": {"age": "", "contrast": "T1w"}}
    one = Case("sub-01_T2w", "01", Path("a.nii.gz"), contrast="T2w", metadata={"age": 99})
    two = Case("sub-02_T2w", "02", Path("b.nii.gz"), contrast="T2w", metadata={"age": "n/a"})
    three = Case("c3", "03", Path("c.nii.gz"), contrast=None, metadata={"contrast": "FLAIR"})
    # the table wins; its n/a falls through to the case's contrast
    assert case_values(film, one, table=rows) == {"contrast": "T2w", "age": "41"}
    # an empty table cell falls through to the metadata, whose n/a is missing
    assert case_values(film, two, table=rows) == {"contrast": "T1w", "age": None}
    assert case_values(film, three, table=rows) == {"contrast": "FLAIR", "age": None}


def test_table_csv_by_case_inline_mapping_and_its_errors(tmp_path):
    csv = tmp_path / "meta.csv"
    csv.write_text("case,age\nc1,30\n")
    assert read_table(str(csv)) == {"c1": {"age": "30"}}
    inline = _film(table={"c1": {"age": 12}, "s2": {"contrast": "T1w"}})
    assert field_values(inline, case_id="c2", subject="s2", contrast="T2w",
                        table=read_table(inline.table)) == {"contrast": "T1w", "age": None}
    bad = tmp_path / "bad.tsv"
    bad.write_text("id\tage\nc1\t3\n")
    with pytest.raises(DatasetError, match="no case, subject, participant_id column"):
        read_table(str(bad))
    with pytest.raises(FileMissingError, match="model.film.table"):
        read_table(str(tmp_path / "nope.tsv"))
    assert read_table(str(tmp_path / "nope.tsv"), required=False) == {}


def test_image_values_use_the_image_metadata():
    image = Image(np.zeros((4, 4)), metadata={"case": "c1", "subject": "s1", "contrast": "t1c",
                                              "age": 50})
    assert image_values(_film(), image) == {"contrast": "t1c", "age": 50}
    assert image_values(_film(table={"s1": {"age": 7}}), image,
                        table={"s1": {"age": 7}}) == {"contrast": "t1c", "age": 7}


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


def test_a_bids_file_name_gives_subject_and_contrast():
    film = _film(table={"sub-07": {"age": "33"}})
    image = Image(np.zeros((4, 4)), metadata={"path": "/data/sub-07_ses-1_T2star.nii.gz"})
    assert image_values(film, image, table=read_table(film.table)) == {"contrast": "T2star",
                                                                      "age": "33"}
    plain = Image(np.zeros((4, 4)), metadata={"path": "/data/scan_T2w.nii.gz"})
    assert image_values(film, plain) == {"contrast": None, "age": None}
