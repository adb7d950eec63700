"""``segloop tools [TOOL]``: list the annotation tools, or one tool's parameters."""

from __future__ import annotations

__all__ = ["register", "run"]


def register(sub) -> None:
    """Add the ``tools`` sub-command."""
    from segloop.tools.spec import TOOL_NAMES

    p = sub.add_parser("tools", help="list the annotation tools and their parameters",
                       description="Without TOOL: one line per tool. With TOOL: its parameters "
                       "as `segloop segment TOOL IMAGE --out LABEL --set KEY=VALUE` takes them.")
    p.add_argument("tool", nargs="?", choices=TOOL_NAMES, metavar="TOOL",
                   help="one of: " + ", ".join(TOOL_NAMES))
    p.set_defaults(func=run)


def run(args) -> int:
    """Print the tool list or one tool's parameters."""
    from segloop.tools import get_tool, tool_names

    if args.tool is None:
        for name in tool_names():
            spec = get_tool(name)
            dims = "/".join(f"{d}D" for d in spec.ndims)
            print(f"{name:<12} {dims:<6} {spec.summary}")
        return 0
    spec = get_tool(args.tool)
    print(f"{spec.name}: {spec.summary}")
    print(f"  works on: {', '.join(f'{d}D' for d in spec.ndims)}"
          + ("; edits an existing label (--label)" if spec.needs_label else ""))
    for name, text in spec.params.items():
        mark = " (required)" if name in spec.required else ""
        print(f"  {name}{mark}: {text}")
    return 0
