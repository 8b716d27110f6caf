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
@click.option("--steps", type=int, default=None,
              help="Greedy decode steps after the prompt [default: 16; 32 for a --target ane export, whose prefill "
                   "gives no logits to compare].")
@click.option("--model-dir", type=click.Path(path_type=Path), help="Checkpoint folder [default: from export.json].")
@click.option("--format", "export_format", type=click.Choice(["coreml", "coreai"]),
              help="Verify only this format of the folder [default: every format it holds].")
@click.option("--cross-check", is_flag=True,
              help="Core ML exports: also export the same graph with the package's own (de-quantized) weights to "
                   "Core AI in a temporary folder and compare our executor with Apple's Core AI runtime.")
@click.option("--adapter", "adapters", multiple=True, metavar="NAME=DIR",
              help="Where the export's adapter NAME is, when not at the path export.json records (checked by sha256).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--debug", is_flag=True, help="Show tracebacks and library warnings.")
def verify_command(path, prompt, tokens, steps, model_dir, export_format, cross_check, adapters, as_json, debug):
    """Prove an exported package matches the PyTorch reference, on any OS (exit 1 outside the thresholds).

    PATH: the folder elm-export wrote, its export.json, or a .mlpackage / .aimodel inside it.
    """
    from exporter.checkpoint.adapters import parse_adapter_option
    from exporter.manifest.check import formats_of
    from exporter.manifest.document import read_manifest
    from exporter.verify.check import export_folder, verify_export
    from exporter.verify.report import format_report

    if steps is not None and steps < 0:
        raise click.BadParameter(f"{steps} must be ≥ 0", param_hint="--steps")
    folder = export_folder(path)  # PATH: the export folder, its export.json, or a package inside it
    formats = [export_format] if export_format else formats_of(read_manifest(folder))
    adapter_dirs = dict(parse_adapter_option(spec) for spec in adapters)
    reports = {backend: verify_export(folder, model_dir=model_dir, prompt=prompt, tokens=tokens, steps=steps,
                                      backend=backend, adapter_dirs=adapter_dirs) for backend in formats}
    agreement = None
    if cross_check:
        from exporter.verify.cross_check import cross_check_export, format_agreement

        agreement = cross_check_export(folder, model_dir=model_dir, prompt=prompt, tokens=tokens, steps=steps)
    if as_json:
        document = {backend: report.to_dict() for backend, report in reports.items()}
        if agreement is not None:
            document["cross_check"] = agreement.to_dict()
        click.echo(json.dumps(document if len(document) > 1 else next(iter(document.values())), indent=2))
    else:
        for report in reports.values():
            click.echo(format_report(report, folder.name))
        if agreement is not None:
            click.echo(format_agreement(agreement))
    failed = [backend for backend, report in reports.items() if not report.passed]
    if failed:
        recipe = next(iter(reports.values())).recipe
        raise VerificationFailed(f"{folder} ({', '.join(failed)}) is outside the parity thresholds for recipe {recipe}")
    if agreement is not None and not agreement.passed:
        raise VerificationFailed(f"{folder}: our float16 executor and Apple's Core AI runtime disagree beyond "
                                 "float16 rounding (see the cross-check line above)")


class VerificationFailed(ExportError):
    """Parity outside the thresholds: exit 1, after the report was printed."""
