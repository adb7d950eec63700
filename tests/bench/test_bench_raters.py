"""`segloop bench raters`: the rater report's time, the biases it recovers from simulated
raters of known bias, and fusion against the mask the raters were drawn from."""

import json

import numpy as np
import pytest

from conftest import shared
from segloop.bench.raters import BIASED, RATERS, run_raters_bench, sign_agreement
from segloop.bench.raters_data import rater_specs, write_rater_dataset
from segloop.bench.report import SUMMARY_KEYS
from segloop.cli.bench_raters import parse_regions
from segloop.cli.main import main
from segloop.errors import InvalidArgumentError
from segloop.fusion.rater_cases import RaterCase
from segloop.io import Image, open_dataset, write_image

QUBIQ = shared("qubiq_brain_growth_7raters")
DRIVE = shared("retina_drive_2raters")
TOP_KEYS = {"suite", "segloop_version", "versions", "machine", "args", "summary", "cases", "notes"}
RECOVERY_KEYS = {
    "dataset",
    "part",
    "rater",
    "given_grow_mm",
    "boundary_bias_mm",
    "error_mm",
    "volume_bias",
    "true_sensitivity",
    "staple_sensitivity",
    "true_specificity",
    "staple_specificity",
    "consensus",
    "offset_corrected_error_mm",
}
GROWN = [r for r, (_, extra) in RATERS.items() if not extra]  # grow -2 .. +2 mm


def _disc(radius: float, shape=(40, 40), centre=(20, 21)) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return ((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2).astype(np.uint8)


@pytest.fixture
def discs(tmp_path):
    """Three cases x three raters of discs on 0.5 mm pixels (NIfTI keeps the spacing)."""
    root = tmp_path / "discs"
    for i, r in enumerate((10, 12, 14)):
        grid = Image(np.zeros((40, 40), np.int16), spacing=(0.5, 0.5))
        write_image(grid, root / "images" / f"c{i}.nii.gz")
        for rater, delta in (("ann", 0), ("bob", -1), ("cyd", 1)):
            write_image(
                grid.with_array(_disc(r + delta), kind="label"),
                root / "labels" / rater / f"c{i}.nii.gz",
            )
    return root


def _parts(report):
    return {
        p: [r for r in report["summary"] if r["part"] == p]
        for p in ("report", "recovery", "recovery_rank", "fusion")
    }


def _check_recovery(report, dataset, limit_mm=0.4, disputed_wins=False):
    parts = _parts(report)
    rows = {(r["consensus"], r["rater"]): r for r in parts["recovery"] if r["dataset"] == dataset}
    assert set(rows) == {(c, r) for c in ("staple", "majority") for r in RATERS}
    assert all(RECOVERY_KEYS <= set(r) for r in rows.values())
    for rater in GROWN:
        # the majority consensus lies on the real mask: the found bias is the given grow
        assert abs(rows["majority", rater]["error_mm"]) < limit_mm, rater
        # STAPLE's consensus is itself off the real mask; net of that offset the same holds
        assert abs(rows["staple", rater]["offset_corrected_error_mm"]) < limit_mm, rater
    ranks = {r["consensus"]: r for r in parts["recovery_rank"] if r["dataset"] == dataset}
    for rank in ranks.values():
        assert rank["sign_correct"] == 1.0
        assert rank["rank_correlation_sensitivity"] > 0.8
    fusion = {r["method"]: r for r in parts["fusion"] if r["dataset"] == dataset}
    assert set(fusion) == {"majority", "weighted", "staple", "staple_disputed", "best_rater",
                           "mean_rater"}
    assert fusion["best_rater"]["rater"] in BIASED and "exact" not in BIASED
    for method in ("majority", "weighted", "staple", "staple_disputed"):
        assert fusion[method]["dice"] > fusion["mean_rater"]["dice"], method
    if disputed_wins:  # on QUBIQ and DRIVE classic STAPLE drifts towards the widest raters
        assert fusion["staple_disputed"]["dice"] > fusion["staple"]["dice"] + 0.02
    return parts


def test_hand_made_discs(discs):
    lines = []
    report = run_raters_bench([discs], simulate_cases=3, log=lines.append)
    assert TOP_KEYS <= set(report) and report["suite"] == "raters"
    parts = _check_recovery(report, "discs")
    (row,) = parts["report"]
    assert {k: row[k] for k in ("dataset", "part", "method", "cases", "raters")} == {
        "dataset": "discs",
        "part": "report",
        "method": "majority",
        "cases": 3,
        "raters": 3,
    }
    assert 0 < row["seconds"] < 30 and 0.8 < row["mean_inter_rater_dice"] < 1
    # the 0.5 mm spacing is used: a 2 mm grow is 4 pixels, the simulated ring is 2 mm thick
    rec = {(r["consensus"], r["rater"]): r for r in parts["recovery"]}
    assert rec["majority", "grow+2"]["true_boundary_bias_mm"] == pytest.approx(2.0, abs=0.2)
    assert {c["rater"] for c in report["cases"] if c["part"] == "report"} == {"ann", "bob", "cyd"}
    assert sum(c["part"] == "fusion" and "method" in c for c in report["cases"]) == 3 * 4
    assert report["args"]["simulate_cases"] == 3 and any("report on 3 cases" in x for x in lines)
    assert set(SUMMARY_KEYS["raters"]) <= {k for r in report["summary"] for k in r}


@pytest.mark.skipif(not QUBIQ.is_dir(), reason="shared QUBIQ data not present")
def test_qubiq_two_simulated_cases():
    report = run_raters_bench([QUBIQ], simulate_cases=2, log=lambda line: None)
    parts = _check_recovery(report, QUBIQ.name, disputed_wins=True)
    (row,) = parts["report"]
    assert (row["cases"], row["raters"]) == (39, 7) and row["seconds"] < 60
    cases = {c["case"] for c in report["cases"] if c["part"] == "recovery"}
    assert cases == {"case01", "case02"}


@pytest.mark.skipif(not DRIVE.is_dir(), reason="shared DRIVE data not present")
def test_drive_in_the_field_of_view():
    report = run_raters_bench(
        [DRIVE], regions={DRIVE.name: "fov"}, simulate_cases=1, log=lambda line: None
    )
    parts = _check_recovery(report, DRIVE.name, disputed_wins=True)
    (row,) = parts["report"]
    assert (row["cases"], row["raters"], row["region"]) == (20, 2, "fov")
    assert row["seconds"] < 60 and report["args"]["regions"] == {DRIVE.name: "fov"}


def test_write_rater_dataset_adds_the_region_as_a_label(tmp_path):
    """The region travels beside the raters (not as a rater) and the report reads it."""
    mask = _disc(8, (24, 24), (12, 12)).astype(bool)
    dataset_root = tmp_path / "src"
    grid = Image(np.zeros((24, 24), np.uint8))
    write_image(grid, dataset_root / "images" / "a.nii.gz")
    for rater in ("r1", "r2"):
        write_image(
            grid.with_array(mask.astype(np.uint8), kind="label"),
            dataset_root / "labels" / rater / "a.nii.gz",
        )
    (real,) = open_dataset(dataset_root).cases
    region = np.zeros((24, 24), bool)
    region[:, :12] = True
    case = RaterCase(real, {"r1": mask, "r2": mask}, (1.0, 1.0), region)
    simulated = [{"x": mask, "y": mask & ~region}]
    dataset = write_rater_dataset(tmp_path / "out", [case], simulated, "fov")
    (out,) = dataset.cases
    assert out.raters == {"manual": {"x": "x", "y": "y"}} and "fov" in out.labels
    assert np.array_equal(out.read_label("fov").array != 0, region)


def test_helpers_and_argument_errors(discs):
    assert rater_specs(3)["shifted"] == {"shift_mm": (0.0, 0.0, 2.0)}
    assert sign_agreement({"a": 1.0, "b": -2.0}, {"a": 0.5, "b": 0.1}) == 0.5
    assert parse_regions(["a=fov", "b = mask"]) == {"a": "fov", "b": "mask"}
    for bad in ("fov", "=fov", "a=", "a=b=c"):
        with pytest.raises(InvalidArgumentError, match="expected DATASET=LABEL"):
            parse_regions([bad])
    with pytest.raises(InvalidArgumentError, match="no dataset folder named drive"):
        run_raters_bench([discs], regions={"drive": "fov"})
    with pytest.raises(InvalidArgumentError, match="simulate_cases must be an integer >= 1"):
        run_raters_bench([discs], simulate_cases=0)
    with pytest.raises(InvalidArgumentError, match="non-empty list"):
        run_raters_bench(str(discs))


def test_cli_end_to_end(discs, tmp_path, capsys):
    out, png = tmp_path / "raters.json", tmp_path / "raters.png"
    assert (
        main(
            [
                "bench",
                "raters",
                "--data",
                str(discs),
                "--simulate-cases",
                "2",
                "--json",
                str(out),
                "--plot",
                str(png),
            ]
        )
        == 0
    )
    report = json.loads(out.read_text())
    assert TOP_KEYS <= set(report) and report["suite"] == "raters"
    assert report["args"]["simulate_cases"] == 2 and report["args"]["regions"] == {}
    assert png.stat().st_size > 1000 and png.read_bytes()[:4] == b"\x89PNG"
    printed = capsys.readouterr().out
    assert "| dataset | part |" in printed and "best_rater" in printed


@pytest.mark.parametrize(
    "region, message",
    [
        ("nofov", "--region 'nofov': expected DATASET=LABEL"),
        ("other=fov", "regions: no dataset folder named other"),
    ],
)
def test_cli_bad_region_is_one_clear_line(discs, region, message, capsys):
    assert main(["bench", "raters", "--data", str(discs), "--region", region]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
