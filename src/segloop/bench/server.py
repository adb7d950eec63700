"""``segloop bench server``: latency under concurrent clients, 5xx, lost and mixed-up labels.

:func:`run_server_bench` starts ``segloop serve`` as a subprocess on a free
loopback port (workspace and SQLite database in a temporary folder, or
``db_url``; the dataset is only read), adds one annotator per client, then:

1. *warm-up*: every (image, tool) call once, so that images are cached and
   imports are done;
2. *single*: one client alone for ``single_seconds`` -- the p95 of its tool
   calls is ``single_client_p95_ms``;
3. *concurrent*: ``clients`` clients (threads with their own ``httpx``
   connection) for ``seconds``.

Each client loops over the same plan: a tool call (``threshold``,
``regiongrow``, ``graphcut`` on the middle slice of an image; the whole image
for 2D ones) and, every ``save_every`` calls, a save of its own rater's label
of that image (the tool's result in its slice, plus a signature of the
client and save number in the first voxels, so that every save's content is
unique), built on the version it last saved (a 409 makes it reload the
latest and retry).  Between actions it pauses ``think_ms`` (uniform in
0.5..1.5 times, seeded) like an annotator looking at the result; 0 makes a
saturation test instead.  Latencies are round trips measured by the client.

After the run, every acknowledged save is read back (as an admin) and its
content compared with what was sent: a missing version or different content
is a *lost update*; content that some other rater sent is a *mixed* label.
Versions nobody acknowledged (``unacknowledged``) and current label files
(the BIDS-derivatives copy) that differ from the latest version are counted
too.  Summary keys (DESIGN.md): ``clients``, ``p95_ms``,
``single_client_p95_ms``, ``errors_5xx``, ``lost_updates``, plus ``ratio``
(p95 / single-client p95), ``requests``, ``saves``, ``tool_calls``,
``worst_call_ratio`` (the largest p95 ratio of one (image, tool) call: what
the pooled p95 hides when slow calls dominate it) and more.

Examples
--------
>>> percentile([5.0, 1.0, 3.0, 2.0, 4.0], 50)
3.0
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from segloop.bench.report import bench_report
from segloop.bench.server_load import ServerProcess, client_loop, digest, plan_calls
from segloop.errors import InvalidArgumentError

__all__ = ["percentile", "run_server_bench", "verify_saves"]

TOOLS = ("threshold", "regiongrow", "graphcut")


def percentile(values, q: float) -> float | None:
    """The ``q``-th percentile of ``values`` (linear interpolation); None when empty."""
    values = list(values)
    return float(np.percentile(values, q)) if values else None


def _stats(records: list[dict], kind: str) -> dict:
    ms = [r["ms"] for r in records if r["kind"] == kind and 200 <= r["status"] < 300]
    return {"n": len(ms), "median_ms": percentile(ms, 50), "p95_ms": percentile(ms, 95)}


def _phase(server: ServerProcess, plan: list[dict], raters: list[str], seconds: float, *,
           save_every: int, think_ms: float, seed: int, acked: dict,
           max_calls: int | None = None) -> list[dict]:
    """Run one client per rater for ``seconds``; every request's record."""
    records: list[list[dict]] = [[] for _ in raters]
    deadline = time.monotonic() + seconds
    threads = [threading.Thread(target=client_loop, kwargs=dict(
        url=server.url, token=server.tokens[rater], rater=rater, plan=plan, deadline=deadline,
        save_every=save_every, think_ms=think_ms, seed=seed + i, offset=i,
        records=records[i], acked=acked, max_calls=max_calls))
        for i, rater in enumerate(raters)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [r for rs in records for r in rs]


def verify_saves(server: ServerProcess, acked: dict) -> dict:
    """Read back every acknowledged save; lost, mixed and unacknowledged versions.

    ``acked`` maps ``(image_id, rater, version)`` to the SHA-256 of the array sent.
    """
    import httpx

    from segloop.io import read_image
    from segloop.server.masks import MaskPayload, decode_mask

    owner = {sent: key[1] for key, sent in acked.items()}
    lost, mixed, unacked, current_bad = [], [], [], []
    headers = {"Authorization": f"Bearer {server.tokens['root']}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=120) as http:
        for image_id, rater in sorted({(k[0], k[1]) for k in acked}):
            rows = http.get(f"/api/labels/{image_id}/{rater}/versions").json()
            mine = {k[2]: d for k, d in acked.items() if k[:2] == (image_id, rater)}
            unacked += [(image_id, rater, r["version"]) for r in rows
                        if r["version"] not in mine]
            for version, sent in sorted(mine.items()):
                r = http.get(f"/api/labels/{image_id}/{rater}", params={"version": version})
                if r.status_code != 200:
                    lost.append((image_id, rater, version, r.status_code))
                    continue
                got = digest(decode_mask(MaskPayload(**r.json()["mask"]), max_voxels=2**34))
                if got != sent:
                    lost.append((image_id, rater, version, "content"))
                    if owner.get(got, rater) != rater:
                        mixed.append((image_id, rater, version, owner[got]))
            latest = max(r["version"] for r in rows) if rows else None
            current = server.workspace_label(image_id, rater)
            if latest is not None and (current is None or
                                       digest(read_image(current, kind="label").array)
                                       != acked.get((image_id, rater, latest))):
                current_bad.append((image_id, rater, latest))
    return {"lost": lost, "mixed": mixed, "unacknowledged": unacked,
            "current_mismatch": current_bad}


def run_server_bench(data: str | Path, *, clients: int = 8, seconds: float = 60.0,
                     single_seconds: float | None = None, think_ms: float = 500.0,
                     save_every: int = 4, images: int = 4, db_url: str | None = None,
                     seed: int = 0, log: Callable[[str], None] = lambda line: None) -> dict:
    """Run the benchmark on the dataset folder ``data``; the report (module docstring).

    Parameters
    ----------
    data : path
        A dataset folder ``segloop serve`` accepts (only read).
    clients : int
        Concurrent clients of the concurrent phase.
    seconds, single_seconds : float
        Length of the concurrent and single-client phases (default: the same).
    think_ms : float
        Mean pause between a client's actions (0: a saturation test).
    save_every : int
        A save after every ``save_every`` tool calls.
    images : int
        Images of the dataset the clients work on (spread evenly over its images).
    db_url : str, optional
        The server's database (default: SQLite in the temporary workspace).
    """
    if clients < 1 or seconds <= 0 or save_every < 1 or images < 1 or think_ms < 0:
        raise InvalidArgumentError(f"clients={clients}, seconds={seconds}, "
                                   f"save_every={save_every}, images={images}, "
                                   f"think_ms={think_ms}: expected positive values")
    single_seconds = seconds if single_seconds is None else single_seconds
    raters = [f"c{i}" for i in range(clients)]
    with ServerProcess(Path(data), users=["solo", *raters], db_url=db_url) as server:
        log(f"server {server.url} ({server.db}), workspace {server.workspace}")
        plan = plan_calls(server, TOOLS, images)
        log(f"plan: {len(plan)} tool calls on {len({p['image_id'] for p in plan})} images")
        acked: dict = {}
        _phase(server, plan, ["solo"], 600, save_every=save_every, think_ms=0, seed=seed,
               acked=acked, max_calls=len(plan))  # warm-up: each call once (caches, imports)
        log(f"single client for {single_seconds:g} s")
        single = _phase(server, plan, ["solo"], single_seconds, save_every=save_every,
                        think_ms=think_ms, seed=seed, acked=acked)
        log(f"{clients} clients for {seconds:g} s")
        many = _phase(server, plan, raters, seconds, save_every=save_every, think_ms=think_ms,
                      seed=seed + 1, acked=acked)
        log(f"verifying {len(acked)} acknowledged saves")
        checked = verify_saves(server, acked)
        server_errors = server.error_lines()
    tool, solo = _stats(many, "tool"), _stats(single, "tool")
    ratio = tool["p95_ms"] / solo["p95_ms"] if tool["p95_ms"] and solo["p95_ms"] else None
    row = {"dataset": Path(data).resolve().name, "db": server.db, "clients": clients,
           "seconds": seconds, "think_ms": think_ms, "requests": len(many),
           "tool_calls": tool["n"], "saves": sum(r["kind"] == "save" and r["status"] == 201
                                                 for r in many),
           "p95_ms": tool["p95_ms"], "single_client_p95_ms": solo["p95_ms"], "ratio": ratio,
           "median_ms": tool["median_ms"], "single_client_median_ms": solo["median_ms"],
           "save_p95_ms": _stats(many, "save")["p95_ms"],
           "single_client_save_p95_ms": _stats(single, "save")["p95_ms"],
           "requests_per_s": round(len(many) / seconds, 2),
           "errors_5xx": sum(r["status"] >= 500 for r in many + single),
           "errors_4xx": sum(400 <= r["status"] < 500 and r["status"] != 409
                             for r in many + single),
           "errors_other": sum(r["status"] < 0 for r in many + single),
           "conflicts": sum(r["status"] == 409 for r in many + single),
           "lost_updates": len(checked["lost"]), "mixed_labels": len(checked["mixed"]),
           "unacknowledged_versions": len(checked["unacknowledged"]),
           "current_file_mismatches": len(checked["current_mismatch"])}
    calls = sorted({(p["image_id"], p["tool"]) for p in plan})
    cases = [{"phase": phase, "image_id": image_id, "tool": name, **_stats(
        [r for r in recs if (r["image_id"], r["tool"]) == (image_id, name)], "tool")}
        for phase, recs in (("single", single), ("concurrent", many)) for image_id, name in calls]
    pairs = {(c["image_id"], c["tool"]): [] for c in cases}
    for c in cases:
        pairs[(c["image_id"], c["tool"])].append(c["p95_ms"])
    worst = max(((b / a, k) for k, (a, b) in pairs.items() if a and b), default=(None, None))
    row["worst_call_ratio"], row["worst_call"] = worst[0], worst[1] and " ".join(worst[1][::-1])
    cases += [{"phase": "verify", **{k: [list(map(str, x)) for x in v][:50]
                                     for k, v in checked.items()}},
              {"phase": "server_log", "errors": server_errors[:50]}]
    notes = [f"{clients} client threads, each pausing {think_ms:g} ms (0.5-1.5x) between "
             f"actions; a save after every {save_every} tool calls; latencies are round trips "
             "on loopback"]
    args = {"data": str(data), "clients": clients, "seconds": seconds,
            "single_seconds": single_seconds, "think_ms": think_ms, "save_every": save_every,
            "images": images, "db": server.db, "seed": seed}
    return bench_report("server", args=args, summary=[row], cases=cases, notes=notes)
