"""Checking an exported package on Linux: run its ML program with float16 storage and compare it to the reference."""
