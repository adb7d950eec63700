"""Metadata values of cases and images: table, case metadata, built-ins (metadata_values)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from segloop.errors import DatasetError, FileMissingError
from segloop.io import Case, Image
from segloop.learn.config import FilmConfig
from segloop.learn.metadata_values import (
    case_values,
    field_values,
    image_values,
    is_missing,
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
    one = tmp_path / "subjects.txt"  # one column: nothing to sniff a delimiter from
    one.write_text("subject\n01\n02\n")
    assert read_table(str(one)) == {"01": {}, "02": {}}
    semi = tmp_path / "semi.txt"
    semi.write_text("case;age\nc1;4\n")
    assert read_table(str(semi)) == {"c1": {"age": "4"}}
    binary = tmp_path / "table.tsv"
    binary.write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(DatasetError, match=r"table.tsv: model.film.table: not a readable text "
                                           r"table \(UnicodeDecodeError\)"):
        read_table(str(binary))


def test_image_values_use_the_image_metadata():
    image = Image(np.zeros((4, 4)), metadata={"case": "c1", "subject": "s1", "contrast": "t1c",
                                              "age": 50})
    assert image_values(_film(), image) == {"contrast": "t1c", "age": 50}
    assert image_values(_film(table={"s1": {"age": 7}}), image,
                        table={"s1": {"age": 7}}) == {"contrast": "t1c", "age": 7}


def test_a_bids_file_name_gives_subject_and_contrast():
    film = _film(table={"sub-07": {"age": "33"}})
    image = Image(np.zeros((4, 4)), metadata={"path": "/data/sub-07_ses-1_T2star.nii.gz"})
    assert image_values(film, image, table=read_table(film.table)) == {"contrast": "T2star",
                                                                      "age": "33"}
    plain = Image(np.zeros((4, 4)), metadata={"path": "/data/scan_T2w.nii.gz"})
    assert image_values(film, plain) == {"contrast": None, "age": None}


def test_no_value_texts_are_missing_whatever_their_case():
    assert [is_missing(v) for v in ("", " NA ", "Null", "-", float("nan"), None)] == [True] * 6
    assert [is_missing(v) for v in ("0", 0, "F", "nanometre")] == [False] * 4
