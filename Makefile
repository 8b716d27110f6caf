# elm-export developer commands. `make install` is idempotent: it only reinstalls when setup.cfg changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ADAPTER := exporter/assets/openelm-tiny-adapters/devil

.PHONY: install test test-unit test-python test-swift clean tiny-model tiny-draft-model tiny-adapter demo bench

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

test: install test-python test-swift

# Unit tests alone (no whole exports): a couple of minutes.
test-unit: install
	$(BIN)/python -m pytest -q -m "not e2e"

# Export the embedded OpenELM with the default recipe and its LoRA adapter (functions of their own), verify both,
# print where it is and the parity report; generate from it with elm-run, its draft model speculating, then the same
# prompt from the base and from the adapter;
# then Apple's Core AI runtime checks our executor on the same weights (elm-verify --cross-check, ~50 s).
demo: install
	$(BIN)/elm-export --size tiny --output out/OpenELM-tiny --force --adapter devil=$(ADAPTER)
	$(BIN)/elm-export --size tiny-draft --output out/OpenELM-tiny-draft --force --quiet > /dev/null
	$(BIN)/elm-run out/OpenELM-tiny --prompt "And God said" --max-new-tokens 48 --draft out/OpenELM-tiny-draft
	$(BIN)/elm-run out/OpenELM-tiny --prompt "WAR, n." --max-new-tokens 32
	$(BIN)/elm-run out/OpenELM-tiny --prompt "WAR, n." --max-new-tokens 32 --adapter devil
	@$(BIN)/elm-verify out/OpenELM-tiny --cross-check > out/cross-check.txt; status=$$?; \
		tail -n 1 out/cross-check.txt; exit $$status

# Benchmarks (never part of `make test`): BENCH_ARGS="--sizes 450m --recipes int4" runs one at a time.
bench: install
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python -m exporter.tools.bench $(BENCH_ARGS)

test-python:
	$(BIN)/python -m pytest -q

test-swift:
	@if [ -f swift_harness/Package.swift ] && command -v swift >/dev/null 2>&1; then \
		cd swift_harness && swift test; \
	else \
		echo "swift test skipped (no swift_harness/Package.swift or no Swift toolchain)"; \
	fi

# Retrain the embedded tiny OpenELM (exporter/assets/openelm-tiny) from the KJV text in Debian's bible-kjv.
tiny-model:
	@dpkg -s bible-kjv >/dev/null 2>&1 || { \
		sudo=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
		$$sudo apt-get update && $$sudo apt-get install -y bible-kjv; }
	$(BIN)/python -m exporter.tools.tiny.train --out exporter/assets/openelm-tiny

# Retrain OpenELM-tiny's speculative-decoding draft (exporter/assets/openelm-tiny-draft): same corpus, split and
# recipe, OpenELM-tiny's tokenizer files copied byte for byte, and scored against OpenELM-tiny.
tiny-draft-model:
	@dpkg -s bible-kjv >/dev/null 2>&1 || { \
		sudo=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
		$$sudo apt-get update && $$sudo apt-get install -y bible-kjv; }
	$(BIN)/python -m exporter.tools.tiny.train --config draft --out exporter/assets/openelm-tiny-draft

# Retrain OpenELM-tiny's LoRA adapter (exporter/assets/openelm-tiny-adapters/devil, Hugging Face PEFT) on
# Ambrose Bierce's The Devil's Dictionary, public domain, from Debian's dict-devil.
tiny-adapter:
	@dpkg -s dict-devil >/dev/null 2>&1 || { \
		sudo=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
		$$sudo apt-get update && $$sudo apt-get install -y dict-devil; }
	$(BIN)/python -m exporter.tools.tiny.train_adapter --out exporter/assets/openelm-tiny-adapters/devil

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
