"""Optimiser, schedule, seeds and the deterministic runtime of a run (segloop.learn.optim)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from segloop.learn.config import load_config  # noqa: E402
from segloop.learn.optim import (  # noqa: E402
    build_optimizer,
    build_scheduler,
    deterministic_runtime,
    epoch_seed,
    seed_all,
)


def test_scheduler_poly_and_constant():
    cfg = load_config({"data": {"path": "x"}, "training": {"epochs": 2},
                       "optim": {"lr": 1.0, "schedule": "poly"}})
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = build_scheduler(cfg, opt, steps_per_epoch=2)
    lrs = []
    for _ in range(4):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == pytest.approx([1.0, 0.75 ** 0.9, 0.5 ** 0.9, 0.25 ** 0.9])
    cfg = load_config(cfg.model_dump(), overrides=["optim.schedule=none"])
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = build_scheduler(cfg, opt, steps_per_epoch=2)
    assert sched.get_last_lr() == [1.0]


def test_optimisers_of_the_config():
    params = [torch.zeros(1, requires_grad=True)]
    cfg = load_config({"data": {"path": "x"}, "optim": {"name": "adamw", "lr": 0.5,
                                                        "weight_decay": 0.1}})
    opt = build_optimizer(cfg, params)
    assert type(opt) is torch.optim.AdamW and opt.defaults["weight_decay"] == 0.1
    sgd = build_optimizer(load_config(cfg.model_dump(), overrides=["optim.name=sgd",
                                                                    "optim.momentum=0"]), params)
    assert type(sgd) is torch.optim.SGD and sgd.defaults["nesterov"] is False


def test_runtime_is_restored_and_seeds_repeat():
    cfg = load_config({"data": {"path": "x"}, "training": {"threads": 1}})
    before = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled())
    with deterministic_runtime(cfg) as threads:
        assert threads == 1 == torch.get_num_threads()
        assert torch.are_deterministic_algorithms_enabled()
    assert (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()) == before
    draws = []
    for _ in range(2):
        seed_all(epoch_seed(7, 3))
        draws.append(float(torch.rand(1)))
    assert draws[0] == draws[1] and epoch_seed(7, 3) != epoch_seed(7, 4)
