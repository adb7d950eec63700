"""Property-based fuzzing of the whole API from its OpenAPI description (schemathesis).

Schemathesis reads ``/openapi.json`` and, for every operation, generates
requests from the schema, sent as an admin: valid ones with a real image id
in the path (so the requests reach the tools and the label store, not just
the 404 of an unknown id), valid ones with any id, and invalid ones (wrong
types, out-of-range numbers, missing fields).  Whatever comes in, the server
must never answer 5xx, and every error must be the JSON ``{"error",
"status"}`` body.  The run is bounded and reproducible: a fixed number of
examples per operation and mode, derandomized (the same requests every run).
One test per router (its OpenAPI tag), so a failure names the resource.

Left out: the routes that start background work (``POST /api/jobs...``:
training and prediction run for minutes in a thread, one training at a time;
the jobs tests exercise them) and ``DELETE /api/users/{name}`` (it would
remove the admin the fuzzer authenticates as).  (schemathesis' own pytest
integration, ``schemathesis.pytest.from_fixture``, is not used: its 4.x
releases read ``request.node._nodeid``, which pytest 9 no longer has; the
strategies of each operation are driven with Hypothesis directly.)
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from server_helpers import make_app

from segloop.server.app import ROUTERS
from segloop.tools import TOOL_NAMES

#: Examples per operation and generation mode (three modes).
MAX_EXAMPLES = 12
_SKIP = [("POST", re.compile(r"^/api/jobs")), ("DELETE", re.compile(r"^/api/users/"))]
#: Real values of path parameters and body fields (so requests get past the 404 of a bad id).
_IMAGES = ("sub-01_T2w", "sub-02_T2w", "sub-03_sample-a_SEM")
_REAL = {"rater": st.sampled_from(("root", "ann")), "name": st.just("bob"),
         "image_id": st.sampled_from(_IMAGES), "tool": st.sampled_from(TOOL_NAMES)}


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory):
    """(schema, admin token): one app on SQLite for the whole run, every image labelled.

    ``root`` and ``ann`` have saved a label of every image (two versions of
    the first), so label reads, versions, reverts and consensus get past 404.
    """
    app, tokens = make_app(tmp_path_factory.mktemp("fuzz"))
    store = app.state.segloop.labels
    for image_id in _IMAGES:
        shape = app.state.segloop.datastore.image(image_id).shape
        mask = np.zeros(shape, np.uint8)
        mask[(slice(2, -2),) * len(shape)] = 1
        for rater in ("root", "ann"):
            store.save(image_id, rater, mask, base_version=0, author=rater)
    shape = app.state.segloop.datastore.image(_IMAGES[0]).shape
    store.save(_IMAGES[0], "root", np.zeros(shape, np.uint8), base_version=1, author="root")
    yield schemathesis.openapi.from_asgi("/openapi.json", app), tokens["root"]
    app.state.segloop.engine.dispose()


def _operations(schema, tag: str):
    for result in schema.get_all_operations():
        op = result.ok()
        if tag not in (op.tags or []):
            continue
        if any(op.method.upper() == m and rx.search(op.path) for m, rx in _SKIP):
            continue
        yield op


def _check(case, token: str) -> None:
    response = case.call(headers={"Authorization": f"Bearer {token}"})
    where = f"{case.method} {case.formatted_path} query={case.query} body={str(case.body)[:200]}"
    assert response.status_code < 500, f"{response.status_code} on {where}: {response.text[:300]}"
    if response.status_code >= 400:
        body = json.loads(response.text)
        assert isinstance(body, dict) and isinstance(body.get("error"), str) and body["error"], \
            f"error body {response.text[:200]} on {where}"
        assert body["status"] == response.status_code, where


def _with_real_ids(case, values: dict):
    """``case`` with real ids in its path parameters and in its body's ``image_id``."""
    for key in case.path_parameters or {}:
        if key in values:
            case.path_parameters[key] = values[key]
    if isinstance(case.body, dict) and "image_id" in case.body:
        case.body["image_id"] = values["image_id"]
    return case


def _fuzz(op, token: str, mode: GenerationMode, real: bool) -> None:
    cases = op.as_strategy(mode)
    if real:
        cases = st.tuples(cases, st.fixed_dictionaries(_REAL)).map(
            lambda pair: _with_real_ids(*pair))

    @given(case=cases)
    @settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck), print_blob=False,
              phases=[Phase.explicit, Phase.generate])  # no shrinking: bounded time
    def run(case):
        _check(case, token)

    run()


def _describe(exc: BaseException) -> str:
    """One line per distinct error (an exception raised in a route is a 500 to a client)."""
    parts = exc.exceptions if isinstance(exc, BaseExceptionGroup) else [exc]
    return "; ".join(f"{type(e).__name__}: {(str(e).splitlines() or [''])[0][:300]}"
                     for e in parts)


@pytest.mark.parametrize("tag", ROUTERS)
def test_fuzz_router(tag, fuzzed):
    schema, token = fuzzed
    ops = list(_operations(schema, tag))
    assert ops, f"no operation tagged {tag}"
    failures = []
    for op in ops:
        passes = [(GenerationMode.POSITIVE, True), (GenerationMode.NEGATIVE, True)]
        if len(op.path_parameters) or len(op.body):  # ids to vary: also any ids
            passes.append((GenerationMode.POSITIVE, False))
        for mode, real in passes:
            try:
                _fuzz(op, token, mode, real)
            except Unsatisfiable:  # nothing invalid to send (no parameters, no body)
                continue
            except Exception as exc:
                failures.append(f"{op.method.upper()} {op.path} ({mode}, real ids: {real}): "
                                f"{_describe(exc)}")
    assert not failures, "\n".join(failures)
