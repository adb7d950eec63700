"""The cache of preprocessed volumes: hits never re-read, stale or corrupt entries are rebuilt."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from segloop.data import phantom_2d
from segloop.io import Image, write_image
from segloop.learn import data as learn_data
from segloop.learn.cache import ArrayCache, cache_key
from segloop.learn.config import load_config

pytest.importorskip("torch")


def _folder(root: Path, n: int = 4) -> Path:
    for i in range(n):
        ph = phantom_2d((32, 32), seed=i, n_blobs=2, thin_structures=False)
        write_image(Image(ph.image), root / "images" / f"c{i}.nii.gz")
        write_image(Image(ph.label, kind="label"), root / "labels" / f"c{i}.nii.gz")
    return root


def _config(root: Path, cache: Path, **data):
    return load_config({"data": {"path": str(root), "cache_dir": str(cache),
                                 "classes": {"blob": [1, 2]}, "split": {"by": "case",
                                                                       "test": 1, "val": 0},
                                 **data},
                        "output": {"dir": str(root / "run")}})


@pytest.fixture
def counted(monkeypatch):
    """Count the real reads of cases (read_volume) made by prepare_data."""
    calls = []
    real = learn_data.read_volume

    def read(case, cfg, **kw):
        calls.append(case.id)
        return real(case, cfg, **kw)

    monkeypatch.setattr(learn_data, "read_volume", read)
    return calls


def _all(data):
    return {v.id: v for v in data.train + data.val + data.test}


def test_a_second_run_reads_nothing_and_gets_the_same_arrays(tmp_path, counted):
    root, cache = _folder(tmp_path / "ds"), tmp_path / "cache"
    first = learn_data.prepare_data(_config(root, cache), log=lambda m: None)
    assert sorted(counted) == ["c0", "c1", "c2", "c3"]
    counted.clear()
    logs = []
    second = learn_data.prepare_data(_config(root, cache), log=logs.append)
    assert counted == []
    assert "cache 4 hits, 0 read" in logs[0]
    a, b = _all(first), _all(second)
    for key, vol in a.items():
        np.testing.assert_array_equal(vol.image, b[key].image)
        np.testing.assert_array_equal(vol.label, b[key].label)
        assert vol.spacing == b[key].spacing and vol.info == b[key].info
        assert vol.group == b[key].group and vol.source == b[key].source
    assert len(list(cache.glob("*.npz"))) == 4


def test_an_edited_file_or_new_settings_rebuild_only_what_changed(tmp_path, counted):
    root, cache = _folder(tmp_path / "ds"), tmp_path / "cache"
    learn_data.prepare_data(_config(root, cache), log=lambda m: None)
    counted.clear()
    label = root / "labels" / "c2.nii.gz"
    new = np.zeros((32, 32), np.uint8)
    new[4:9, 4:9] = 2
    write_image(Image(new, kind="label"), label, overwrite=True)
    os.utime(label, ns=(label.stat().st_atime_ns, label.stat().st_mtime_ns + 10**9))
    data = learn_data.prepare_data(_config(root, cache), log=lambda m: None)
    assert counted == ["c2"]
    assert int(_all(data)["c2"].label.sum()) == 25
    assert len(list(cache.glob("c2-*.npz"))) == 1  # the stale entry is gone
    counted.clear()
    learn_data.prepare_data(_config(root, cache, normalize="minmax"), log=lambda m: None)
    assert sorted(counted) == ["c0", "c1", "c2", "c3"]


def test_a_corrupt_entry_is_rebuilt_not_trusted(tmp_path, counted):
    root, cache = _folder(tmp_path / "ds", n=3), tmp_path / "cache"
    good = _all(learn_data.prepare_data(_config(root, cache), log=lambda m: None))
    (entry,) = cache.glob("c1-*.npz")
    entry.write_bytes(entry.read_bytes()[: entry.stat().st_size // 2])  # truncated
    counted.clear()
    again = _all(learn_data.prepare_data(_config(root, cache), log=lambda m: None))
    assert counted == ["c1"]
    np.testing.assert_array_equal(again["c1"].image, good["c1"].image)
    counted.clear()
    learn_data.prepare_data(_config(root, cache), log=lambda m: None)
    assert counted == []


def test_array_cache_checks_the_stored_key_and_writes_atomically(tmp_path):
    cache = ArrayCache(tmp_path)
    k1, k2 = cache_key({"a": 1}, []), cache_key({"a": 2}, [])
    assert k1 != k2 and len(k1) == 24
    cache.save("x/y", k1, {"image": np.arange(6).reshape(2, 3)}, {"n": 1})
    # an entry copied under another key's name is not trusted
    cache.path("x/y", k1).rename(cache.path("x/y", k2))
    assert cache.load("x/y", k2) is None
    assert cache.stats == {"hits": 0, "misses": 1, "rebuilt": 1}
    assert not cache.path("x/y", k2).exists()
    cache.save("x/y", k1, {"image": np.arange(6).reshape(2, 3)}, {"n": np.int64(3)})
    arrays, meta = cache.load("x/y", k1)
    assert arrays["image"].tolist() == [[0, 1, 2], [3, 4, 5]] and meta == {"n": 3}
    assert [p.name for p in tmp_path.iterdir()] == [cache.path("x/y", k1).name]
    assert "/" not in cache.path("x/y", k1).name


def test_cache_key_follows_file_size_and_mtime(tmp_path):
    f = tmp_path / "a.nii.gz"
    f.write_bytes(b"1234")
    k = cache_key({}, [f])
    assert cache_key({}, [f]) == k
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 1))
    assert cache_key({}, [f]) != k
