"""The rater report: hand-made folders with known answers, real QUBIQ/DRIVE checked
against independent NumPy computations, and simulated raters of known bias recovered."""

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import shared
from segloop.errors import DatasetError, InvalidArgumentError, OutputExistsError
from segloop.fusion.rater_cases import rater_groups
from segloop.fusion.report import rater_report
from segloop.fusion.report_files import REPORT_FILES, write_rater_report
from segloop.io import Image, write_image
from segloop.simulate.raters import simulate_rater

QUBIQ = shared("qubiq_brain_growth_7raters")
DRIVE = shared("retina_drive_2raters")


def _square(lo: int, hi: int, shape=(32, 32)) -> np.ndarray:
    a = np.zeros(shape, np.uint8)
    a[lo:hi, lo:hi] = 1
    return a


def _folder(root: Path, raters: dict[str, dict[str, np.ndarray]]) -> Path:
    """images/<name>.png + labels/<rater>/<name>.png from {rater: {name: mask}}."""
    names = {n for per in raters.values() for n in per}
    for name in names:
        write_image(Image(np.full((32, 32), 50, np.uint8)), root / "images" / f"{name}.png")
    for rater, per in raters.items():
        for name, mask in per.items():
            write_image(Image(mask, kind="label"), root / "labels" / rater / f"{name}.png")
    return root


def test_hand_made_squares_give_the_exact_numbers(tmp_path):
    truth, big = _square(8, 24), _square(7, 25)
    root = _folder(tmp_path, {"r1": {"a": truth, "b": truth}, "r2": {"a": truth, "b": truth},
                              "r3": {"a": big, "b": big}})
    for consensus in ("staple", "majority"):
        report = rater_report(root, consensus=consensus)
        r3 = report["raters"]["r3"]
        assert r3["n_cases"] == 2
        assert r3["boundary_bias_mm"] == pytest.approx(1.0, abs=0.06)  # corners: sqrt(2)
        assert r3["volume_bias"] == pytest.approx((18**2 - 16**2) / 16**2)
        assert r3["dice_vs_consensus"] == pytest.approx(2 * 256 / (256 + 324))
        assert r3["sensitivity"] == pytest.approx(1.0)
        assert r3["specificity"] == pytest.approx((1024 - 324) / (1024 - 256))
        assert r3["dice_vs_consensus_std"] == pytest.approx(0.0)
        assert report["raters"]["r1"]["boundary_bias_mm"] == pytest.approx(0.0)
        assert report["raters"]["r1"]["dice_vs_consensus"] == pytest.approx(1.0)
    pair = report["pairwise"]
    assert pair["raters"] == ["r1", "r2", "r3"]
    assert np.allclose(pair["dice"], [[1, 1, 0.8828], [1, 1, 0.8828], [0.8828, 0.8828, 1]],
                       atol=1e-4)
    assert pair["n_cases"][0][2] == 2
    assert report["raters"]["r3"]["staple_sensitivity"] == pytest.approx(1.0, abs=1e-3)
    assert report["raters"]["r3"]["staple_specificity"] < report["raters"]["r1"][
        "staple_specificity"]


def test_missing_raters_are_scored_on_their_cases_and_single_raters_skipped(tmp_path):
    truth = _square(8, 24)
    root = _folder(tmp_path, {"r1": {"a": truth, "b": truth, "c": truth},
                              "r2": {"a": truth, "b": truth}, "r3": {"a": _square(9, 23)}})
    report = rater_report(root)
    assert {r: v["n_cases"] for r, v in report["raters"].items()} == {"r1": 2, "r2": 2, "r3": 1}
    assert report["skipped"] == [{"case": "c", "reason": "1 rater(s); 2 are needed"}]
    assert report["n_cases"] == 2
    assert report["raters"]["r3"]["boundary_bias_mm"] == pytest.approx(-1.0, abs=0.06)
    assert report["pairwise"]["n_cases"][0][2] == 1
    assert report["pairwise"]["n_cases"][1][2] == 1


def test_non_binary_raters_need_a_class(tmp_path):
    two = _square(8, 24)
    two[8:12, 8:24] = 2
    root = _folder(tmp_path, {"r1": {"a": two}, "r2": {"a": two}})
    with pytest.raises(DatasetError, match=r"rater r1.*not binary.*--class"):
        rater_report(root)
    report = rater_report(root, class_value=2)
    assert report["raters"]["r1"]["dice_vs_consensus"] == pytest.approx(1.0)


def test_bad_arguments_and_no_raters(tmp_path):
    root = _folder(tmp_path / "d", {"r1": {"a": _square(8, 24)}, "r2": {"a": _square(8, 24)}})
    with pytest.raises(InvalidArgumentError, match="consensus 'mean'"):
        rater_report(root, consensus="mean")
    with pytest.raises(InvalidArgumentError, match="limit"):
        rater_report(root, limit=0)
    with pytest.raises(DatasetError, match="no region label 'fov'"):
        rater_report(root, region="fov")
    plain = tmp_path / "plain"
    write_image(Image(np.zeros((8, 8), np.uint8)), plain / "images" / "a.png")
    write_image(Image(np.zeros((8, 8), np.uint8), kind="label"), plain / "labels" / "a.png")
    with pytest.raises(DatasetError, match="no case of this dataset has raters"):
        rater_report(plain)


def test_groups_from_a_rater_table(tmp_path):
    truth = _square(8, 24)
    root = _folder(tmp_path, {"a1": {"x": truth}, "a2": {"x": truth},
                              "b1": {"x": _square(6, 26)}, "b2": {"x": _square(6, 26)}})
    (root / "raters.tsv").write_text("rater\tcentre\nrater-a1\tA\na2\tA\nb1\tB\nb2\tB\n")
    groups = rater_groups(root / "raters.tsv", "centre")
    assert groups == {"a1": "A", "a2": "A", "b1": "B", "b2": "B"}
    report = rater_report(root, groups=groups, group_attribute="centre")
    g = report["groups"]
    assert g["attribute"] == "centre"
    assert g["within"] == pytest.approx(1.0)
    assert g["between"] == pytest.approx(2 * 256 / (256 + 400))
    with pytest.raises(DatasetError, match="no column 'site'"):
        rater_groups(root / "raters.tsv", "site")


def test_report_folder_files_and_overwrite(tmp_path):
    root = _folder(tmp_path / "d", {"r1": {"a": _square(8, 24)}, "r2": {"a": _square(9, 24)}})
    out = tmp_path / "report"
    report = write_rater_report(root, out)
    assert sorted(p.name for p in out.iterdir()) == sorted(REPORT_FILES)
    saved = json.loads((out / "report.json").read_text())
    assert set(saved["raters"]["r1"]) >= {"dice_vs_consensus", "volume_bias", "boundary_bias_mm",
                                          "sensitivity", "specificity", "n_cases"}
    assert saved["raters"] == json.loads(json.dumps(report["raters"]))
    assert len((out / "cases.csv").read_text().splitlines()) == 1 + 2
    assert (out / "raters.csv").read_text().startswith("rater,n_cases,dice_vs_consensus")
    with pytest.raises(OutputExistsError, match="holds a report already"):
        write_rater_report(root, out)
    write_rater_report(root, out, overwrite=True)
    assert (out / "report.json.~1~").exists()


@pytest.mark.skipif(not QUBIQ.is_dir(), reason="shared QUBIQ data not present")
def test_qubiq_matches_an_independent_numpy_computation():
    archive = np.load(QUBIQ / "brain_growth_7raters.npz")
    masks = archive["masks"][:8].astype(bool)  # (case, rater, y, x)
    report = rater_report(QUBIQ, consensus="majority", limit=8)
    assert report["n_cases"] == 8 and len(report["raters"]) == 7
    majority = masks.sum(axis=1) >= 4  # strict majority of 7
    for r in range(7):
        m = masks[:, r]
        tp = (m & majority).sum(axis=(1, 2))
        dice = 2 * tp / (m.sum(axis=(1, 2)) + majority.sum(axis=(1, 2)))
        sens = tp / majority.sum(axis=(1, 2))
        spec = (~m & ~majority).sum(axis=(1, 2)) / (~majority).sum(axis=(1, 2))
        vol = (m.sum(axis=(1, 2)) - majority.sum(axis=(1, 2))) / majority.sum(axis=(1, 2))
        row = report["raters"][f"rater{r + 1}"]
        assert row["dice_vs_consensus"] == pytest.approx(dice.mean(), abs=1e-9)
        assert row["dice_vs_consensus_std"] == pytest.approx(dice.std(), abs=1e-9)
        assert row["sensitivity"] == pytest.approx(sens.mean(), abs=1e-9)
        assert row["specificity"] == pytest.approx(spec.mean(), abs=1e-9)
        assert row["volume_bias"] == pytest.approx(vol.mean(), abs=1e-9)
    a, b = masks[:, 0], masks[:, 5]
    pair = (2 * (a & b).sum(axis=(1, 2)) / (a.sum(axis=(1, 2)) + b.sum(axis=(1, 2)))).mean()
    assert report["pairwise"]["dice"][0][5] == pytest.approx(pair, abs=1e-9)


@pytest.mark.skipif(not DRIVE.is_dir(), reason="shared DRIVE data not present")
def test_drive_within_the_field_of_view_matches_numpy():
    from PIL import Image as PILImage

    def read(path):
        with PILImage.open(path) as im:
            return np.asarray(im)

    report = rater_report(DRIVE, consensus="majority", region="fov", limit=2)
    assert report["n_cases"] == 2 and sorted(report["raters"]) == ["rater1", "rater2"]
    test = DRIVE / "DRIVE" / "test"
    sens = []
    for n in ("01", "02"):
        r1 = read(test / "1st_manual" / f"{n}_manual1.gif") > 127
        r2 = read(test / "2nd_manual" / f"{n}_manual2.gif") > 0
        fov = read(test / "mask" / f"{n}_test_mask.gif") > 127
        both = r1 & r2 & fov  # majority of two with ties to background
        sens.append(((r2 & fov) & both).sum() / both.sum())
        assert report["pairwise"]["dice"][0][1] != 1.0
    assert report["raters"]["rater2"]["sensitivity"] == pytest.approx(np.mean(sens), abs=1e-9)


@pytest.mark.skipif(not QUBIQ.is_dir(), reason="shared QUBIQ data not present")
def test_simulated_raters_of_known_bias_are_recovered(tmp_path):
    """Raters drawn from QUBIQ's first rater with known bias: the report finds each sign
    and size, and STAPLE's sensitivity/specificity rank them in the true order."""
    archive = np.load(QUBIQ / "brain_growth_7raters.npz")
    specs = {"exact": {}, "wide2": {"grow_mm": 2.0}, "wide1": {"grow_mm": 1.0},
             "tight1": {"grow_mm": -1.0}, "tight2": {"grow_mm": -2.0},
             "misses": {"miss": 0.15}}
    truth_sens = {r: [] for r in specs}
    truth_spec = {r: [] for r in specs}
    raters: dict[str, dict[str, np.ndarray]] = {r: {} for r in specs}
    for i in range(6):
        truth = archive["masks"][i, 0].astype(bool)
        for j, (rater, spec) in enumerate(specs.items()):
            mask = simulate_rater(truth, seed=10 * i + j, **spec)
            raters[rater][f"case{i}"] = mask.astype(np.uint8)
            truth_sens[rater].append((mask & truth).sum() / truth.sum())
            truth_spec[rater].append((~mask & ~truth).sum() / (~truth).sum())
    report = rater_report(_folder(tmp_path, raters))
    found = {r: report["raters"][r]["boundary_bias_mm"] for r in specs}
    for rater, grow in (("wide2", 2), ("wide1", 1), ("exact", 0), ("tight1", -1),
                        ("tight2", -2)):
        assert found[rater] == pytest.approx(grow, abs=0.35), (rater, found)
        if grow:
            assert np.sign(report["raters"][rater]["volume_bias"]) == np.sign(grow)
    assert report["raters"]["misses"]["volume_bias"] < -0.1
    for key, truth_values in (("staple_sensitivity", truth_sens),
                              ("staple_specificity", truth_spec)):
        true = {r: float(np.mean(v)) for r, v in truth_values.items()}
        est = {r: report["raters"][r][key] for r in specs}
        pairs = [(a, b) for a in specs for b in specs if true[a] - true[b] > 0.005]
        assert len(pairs) >= 4
        wrong = [(a, b) for a, b in pairs if not est[a] > est[b]]
        assert not wrong, (key, true, est)


def test_leave_one_out_compares_each_rater_with_the_others(tmp_path):
    truth, big = _square(8, 24), _square(6, 26)
    root = _folder(tmp_path, {"r1": {"a": truth}, "r2": {"a": big}})
    report = rater_report(root, consensus="majority", leave_one_out=True)
    assert report["leave_one_out"] is True
    # two raters: each is compared with the other one
    assert report["raters"]["r1"]["volume_bias"] == pytest.approx((256 - 400) / 400)
    assert report["raters"]["r2"]["volume_bias"] == pytest.approx((400 - 256) / 256)
    assert report["raters"]["r1"]["boundary_bias_mm"] == pytest.approx(-2.0)
    assert report["raters"]["r2"]["boundary_bias_mm"] == pytest.approx(2.0, abs=0.15)  # corners
    three = _folder(tmp_path / "three", {"r1": {"a": truth}, "r2": {"a": truth},
                                         "r3": {"a": big}})
    loo = rater_report(three, leave_one_out=True)  # STAPLE of the other two
    assert loo["raters"]["r3"]["volume_bias"] == pytest.approx((400 - 256) / 256)
    # r1 against STAPLE(r2, r3) = their intersection here = r1's square
    assert loo["raters"]["r1"]["dice_vs_consensus"] == pytest.approx(1.0)
    assert loo["raters"]["r3"]["dice_vs_consensus"] == pytest.approx(2 * 256 / (256 + 400))


def _ball(shape, centre, radius, spacing):
    grid = np.indices(shape).astype(float)
    d2 = sum(((g - c) * s) ** 2 for g, c, s in zip(grid, centre, spacing, strict=True))
    return (d2 <= radius**2).astype(np.uint8)


def test_bids_volumes_with_rater_folders_and_entities_in_3d(tmp_path):
    """BIDS 3D: derivatives/labels-<rater>/ and a rater entity; spacing in mm is used."""
    spacing = (2.0, 1.0, 1.0)
    shape = (20, 40, 40)
    root = tmp_path / "bids"
    (root / "dataset_description.json").parent.mkdir(parents=True)
    (root / "dataset_description.json").write_text('{"Name": "t", "BIDSVersion": "1.9.0"}')
    for sub in ("01", "02"):
        write_image(Image(np.zeros(shape, np.int16), spacing=spacing),
                    root / f"sub-{sub}" / "anat" / f"sub-{sub}_T2w.nii.gz")
        labels = {"ann": 8.0, "bob": 8.0, "cy": 10.0}
        for rater, radius in labels.items():
            mask = Image(_ball(shape, (10, 20, 20), radius, spacing), spacing=spacing, kind="label")
            if rater == "cy":  # the entity form
                path = (root / "derivatives" / "labels" / f"sub-{sub}" / "anat"
                        / f"sub-{sub}_rater-cy_T2w_seg-manual.nii.gz")
            else:
                path = (root / "derivatives" / f"labels-{rater}" / f"sub-{sub}" / "anat"
                        / f"sub-{sub}_T2w_seg-manual.nii.gz")
            write_image(mask, path)
    report = rater_report(root)
    assert report["kind"] == "seg-manual" and report["n_cases"] == 2
    assert report["raters"]["cy"]["boundary_bias_mm"] == pytest.approx(2.0, abs=0.3)
    assert report["raters"]["ann"]["boundary_bias_mm"] == pytest.approx(0.0, abs=1e-9)
    assert report["raters"]["cy"]["volume_bias"] == pytest.approx((10 / 8) ** 3 - 1, rel=0.1)
