# elm-export developer commands. `make install` is idempotent: it only reinstalls when setup.cfg changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test test-python test-swift clean

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

test: install test-python test-swift

test-python:
	$(BIN)/python -m pytest -q

test-swift:
	@if [ -f swift_harness/Package.swift ] && command -v swift >/dev/null 2>&1; then \
		cd swift_harness && swift test; \
	else \
		echo "swift test skipped (no swift_harness/Package.swift or no Swift toolchain)"; \
	fi

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
