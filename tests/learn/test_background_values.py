"""Suggested test for data.background (put it in tests/learn/test_data.py)."""

import numpy as np
import pytest

from segloop.io import Image, write_image
from segloop.learn.config import ConfigError, load_config
from segloop.learn.data import prepare_data


def test_background_values_are_read_as_background_and_others_still_refused(tmp_path):
    lab = np.zeros((16, 16), np.uint8)
    lab[2:6, 2:6], lab[8:12, 8:12], lab[12:14, 2:4] = 1, 2, 3
    for i in range(3):
        write_image(Image((lab * 40 + i).astype(np.uint8)), tmp_path / "images" / f"c{i}.png")
        write_image(Image(lab, kind="label"), tmp_path / "labels" / f"c{i}.png")
    raw = {"data": {"path": str(tmp_path), "classes": {"lv": [3]}, "background": [1, 2],
                    "split": {"test": 1, "val": 0}}, "output": {"dir": str(tmp_path / "o")}}
    data = prepare_data(load_config(raw), log=lambda line: None)
    assert np.array_equal(data.train[0].label, (lab == 3).astype(np.uint8))
    raw["data"]["background"] = [1]
    with pytest.raises(Exception, match=r"values \[2\]"):
        prepare_data(load_config(raw), log=lambda line: None)
    raw["data"]["background"] = [3]
    with pytest.raises(ConfigError, match=r"data: background: values \[3\] are also in classes"):
        load_config(raw)
