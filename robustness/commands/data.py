"""``robustness data``: benchmark data sub-commands (download, phantom, preview)."""

from __future__ import annotations

import importlib

from robustness.errors import UserError

DATA_COMMANDS: dict[str, tuple[str, str]] = {
    "download": ("robustness.commands.data_download", "fetch MediConfusion annotations and images"),
    "phantom": ("robustness.commands.data_phantom", "generate the synthetic phantom benchmark"),
    "preview": ("robustness.commands.data_preview", "draw a contact sheet of any benchmark"),
    "check": ("robustness.commands.data_check", "validate a benchmark without running a model"),
}


def usage() -> str:
    lines = ["usage: robustness data {" + ",".join(DATA_COMMANDS) + "} ...", ""]
    lines += [f"  {name:<10} {help_}" for name, (_, help_) in DATA_COMMANDS.items()]
    lines.append("\nEach has --help.")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    name = argv[0]
    if name not in DATA_COMMANDS:
        raise UserError(f"unknown data command {name!r} (choose from {', '.join(DATA_COMMANDS)})")
    module = importlib.import_module(DATA_COMMANDS[name][0])
    return module.main(argv[1:])
