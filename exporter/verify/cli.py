"""`elm-verify PATH`: run an exported package on this machine and compare it with the reference."""

from __future__ import annotations

import json
from pathlib import Path

import click

from exporter.errors import ExportError


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--prompt", help="Prompt text (needs tokenizer.json in PATH) [default: a fixed English sentence].")
@click.option("--tokens", type=int, help="Use N seeded token ids instead of a text prompt.")
@click.option("--steps", type=int, default=16, show_default=True, help="Greedy decode steps after the prompt.")
@click.option("--model-dir", type=click.Path(path_type=Path), help="Checkpoint folder [default: from export.json].")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--debug", is_flag=True, help="Show tracebacks and library warnings.")
def verify_command(path, prompt, tokens, steps, model_dir, as_json, debug):
    """Prove an exported package matches the PyTorch reference, on any OS (exit 1 outside the thresholds).

    PATH: the folder elm-export wrote, its export.json, or a .mlpackage inside it.
    """
    from exporter.verify.check import export_folder, verify_export
    from exporter.verify.report import format_report

    if steps < 0:
        raise click.BadParameter(f"{steps} must be ≥ 0", param_hint="--steps")
    folder = export_folder(path)  # PATH: the export folder, its export.json, or a package inside it
    report = verify_export(folder, model_dir=model_dir, prompt=prompt, tokens=tokens, steps=steps)
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        click.echo(format_report(report, folder.name))
    if not report.passed:
        raise VerificationFailed(f"{folder} is outside the parity thresholds for recipe {report.recipe}")


class VerificationFailed(ExportError):
    """Parity outside the thresholds: exit 1, after the report was printed."""
