"""``segloop bench server``: the annotation server under concurrent clients.

::

    segloop bench server --data ../shared/data/bids_ivadomed --clients 8 --seconds 60
        --json server.json

The report is :func:`segloop.bench.server.run_server_bench`'s.
"""

from __future__ import annotations

__all__ = ["add_parser", "run"]


def add_parser(suites, common):
    """Add ``server`` to the bench sub-parsers (``common`` adds ``--json``)."""
    p = suites.add_parser(
        "server",
        help="the annotation server under concurrent clients: p95 tool latency vs one client, "
        "5xx, lost or mixed-up labels",
        description="Start `segloop serve` on the dataset (temporary workspace, loopback, a "
        "free port), run one client alone, then CLIENTS concurrent clients (threads with "
        "httpx), each looping over tool calls (threshold, region growing, graph cut on the "
        "middle slice of an image) and saves of its own rater's label built on its last "
        "version (409: reload and retry); then read back every acknowledged save and count "
        "lost and mixed-up labels. Reports the p95 tool latency beside the single client's, "
        "5xx answers and lost updates.",
    )
    p.add_argument("--data", required=True, metavar="DIR",
                   help="dataset folder (any layout `segloop serve` reads; only read)")
    p.add_argument("--clients", type=int, default=8, help="concurrent clients (default 8)")
    p.add_argument("--seconds", type=float, default=60.0,
                   help="length of the concurrent phase (default 60)")
    p.add_argument("--single-seconds", type=float, default=None, metavar="S",
                   help="length of the single-client phase (default: --seconds)")
    p.add_argument("--think-ms", type=float, default=500.0, metavar="MS",
                   help="mean pause of a client between actions, like an annotator looking "
                   "at the result (default 500; 0: a saturation test)")
    p.add_argument("--save-every", type=int, default=4, metavar="N",
                   help="a label save after every N tool calls (default 4)")
    p.add_argument("--images", type=int, default=4, metavar="N",
                   help="N images, spread evenly over the dataset, are worked on (default 4)")
    p.add_argument("--db", default=None, metavar="URL",
                   help="the server's database (default: SQLite in the temporary workspace; "
                   "postgresql://USER@HOST:PORT/NAME, an empty database)")
    p.add_argument("--seed", type=int, default=0, help="seed of the clients' pauses")
    common(p, plot=False)
    return p


def run(args):
    """Run the suite: ``(report, None)``."""
    from segloop.bench.server import run_server_bench

    report = run_server_bench(
        args.data, clients=args.clients, seconds=args.seconds,
        single_seconds=args.single_seconds, think_ms=args.think_ms,
        save_every=args.save_every, images=args.images, db_url=args.db, seed=args.seed,
        log=lambda line: print(line, flush=True))
    return report, None
