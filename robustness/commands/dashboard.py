"""``robustness dashboard --entity E --project P [--name N] [--runs PATH...] [--dry-run]``.

Builds the W&B workspace for comparing models and saves it (needs ``wandb login``);
``--dry-run`` prints its panels as JSON and sends nothing. Exit 2 for bad input or no login.
"""

from __future__ import annotations

from robustness.commands.args import OneLineArgumentParser


def build_parser() -> OneLineArgumentParser:
    parser = OneLineArgumentParser(
        prog="robustness dashboard",
        description="Build a W&B workspace comparing models' robustness: runs grouped by model, "
                    "curves per corruption and attack, shift bars, position bias, per-category "
                    "heatmaps.")
    parser.add_argument("--entity", required=True, help="W&B entity (user or team)")
    parser.add_argument("--project", required=True, help="W&B project the runs are in")
    parser.add_argument("--name", default="robustness comparison", help="workspace name")
    parser.add_argument("--runs", nargs="+", metavar="PATH",
                        help="run or sweep folders whose conditions the panels should cover "
                             "(default: the default experiment's probe suite)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the panels as JSON; no network, no login needed")
    return parser


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    from robustness.errors import UserError
    from robustness.redaction import redact_text
    from robustness.tracking import dashboard

    layout = (dashboard.layout_from_summaries(dashboard.summaries_from(args.runs)) if args.runs
              else dashboard.default_layout())
    workspace = dashboard.build_workspace(args.entity, args.project, args.name, layout)
    if args.dry_run:
        print(dashboard.dry_run_json(workspace))
        return 0
    if not dashboard.logged_in():
        raise UserError("saving a W&B workspace needs a login: run `wandb login` or set "
                        "WANDB_API_KEY (or use --dry-run to see the panels)")
    try:
        workspace.save()
    except Exception as err:  # noqa: BLE001 - any SDK or network failure is one line
        raise UserError(f"W&B did not save the workspace: {redact_text(str(err))[:300]}") from None
    print(f"workspace saved: {workspace.url}")
    return 0
