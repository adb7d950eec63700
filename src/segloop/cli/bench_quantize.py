r"""``segloop bench quantize``: int8 vs float32 (Dice, CPU latency, size) on a trained config.

::

    segloop bench quantize --config configs/quantize_lgg2d.yaml --json quantize.json \
        --plot quantize.png

The report is :func:`segloop.bench.quantize.run_quantize_bench`'s. The config
is parsed (and the numbers checked) before torch is imported, so bad input
fails at once.
"""

from __future__ import annotations

__all__ = ["add_parser", "run"]


def add_parser(suites, common):
    """Add ``quantize`` to the bench sub-parsers (``common`` adds ``--json`` and ``--plot``)."""
    p = suites.add_parser(
        "quantize", help="int8 vs float32: test Dice, CPU latency and model size",
        description="Train the config (or reuse its finished run, or take --model), export it "
        "as a float32 ONNX model and as int8 (calibrated on training samples), score the "
        "torch checkpoint, the float32 ONNX model and the int8 one on the test split, and time "
        "them side by side (same cases, same threads, warm-up, interleaved rounds). "
        "latency_ratio = torch float32 seconds / int8 seconds; size_ratio = float32 ONNX "
        "bytes / int8 bytes.")
    p.add_argument("--config", required=True, metavar="CFG",
                   help="the training config (YAML/JSON; configs/quantize_*.yaml)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. training.epochs=1 or data.path=DIR "
                   "(repeatable; VALUE is read as YAML)")
    p.add_argument("--model", metavar="CKPT", default=None,
                   help="a trained checkpoint: no training (its own config pre-processes; "
                   "the data folder and the output folder come from --config)")
    p.add_argument("--calibration", type=int, default=16, metavar="N",
                   help="int8 calibration samples of the training split (default 16)")
    p.add_argument("--method", choices=("minmax", "percentile"), default="minmax",
                   help="calibration method (default minmax)")
    p.add_argument("--repeats", type=int, default=3, metavar="N",
                   help="timed rounds over the test cases (default 3)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="threads of torch and ONNX Runtime (default: torch's, one per core)")
    common(p)
    return p


def run(args):
    """Run the suite: ``(report, write_plot)``."""
    from segloop.errors import InvalidArgumentError
    from segloop.learn.config import load_config

    for name, value in (("--calibration", args.calibration), ("--repeats", args.repeats),
                        ("--threads", args.threads)):
        if value is not None and value < 1:
            raise InvalidArgumentError(f"{name} must be at least 1, got {value}")
    cfg = load_config(args.config, overrides=args.set)
    from segloop.bench.quantize import run_quantize_bench, write_plot  # torch after the config

    report = run_quantize_bench(
        cfg, checkpoint=args.model, calibration=args.calibration, method=args.method,
        repeats=args.repeats, threads=args.threads,
        args={"config": args.config, "set": list(args.set), "model": args.model},
        log=lambda line: print(line, flush=True))
    return report, write_plot
