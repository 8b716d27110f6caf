"""`python -m exporter` is `elm-export`."""

from exporter.cli import export_main

export_main()
