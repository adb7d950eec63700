"""``segloop demo``: the project's main job in miniature, on built-in real data.

Each capability of segloop adds a step, so the demo always shows the whole
system working end to end. See :func:`run_demo`.
"""

from segloop.demo.runner import run_demo

__all__ = ["run_demo"]
