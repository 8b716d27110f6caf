"""`python -m exporter.verify` is `elm-verify`."""

from exporter.cli import verify_main

verify_main()
