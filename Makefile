# Two entry points for a fresh Debian machine: `make demo` and `make test`.
VENV    := .venv
PYTHON  := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
DURATION ?=
# `choreo contract check` refuses a breaking change to a recorded event type (docs/evolving-events.md).
CONTRACT_ARGS ?=
# What ruff checks; mypy's files are listed in pyproject.toml.
LINTED  := gateway devices reactors tests bench examples

.PHONY: demo test bench setup clean

demo: setup
	$(VENV)/bin/choreo demo $(if $(DURATION),--duration $(DURATION))

test: setup
	$(VENV)/bin/choreo contract check $(CONTRACT_ARGS)
	$(VENV)/bin/ruff check $(LINTED)
	$(VENV)/bin/mypy
	$(VENV)/bin/pytest $(PYTEST_ARGS)

bench: setup
	$(PYTHON) bench/mqtt_clients.py
	$(PYTHON) bench/fleet.py
	$(PYTHON) bench/sink.py --replicas 1
	$(PYTHON) bench/sink.py --replicas 3
	$(PYTHON) bench/pipeline.py --rounds 3 --systems ours,node-red,bare
	$(PYTHON) bench/storage_layout.py
	$(PYTHON) bench/idle.py
	$(PYTHON) bench/hot_paths.py
	$(PYTHON) bench/instructions.py
	$(PYTHON) bench/process_instructions.py
	$(PYTHON) bench/console.py
	$(PYTHON) bench/flood.py
	$(PYTHON) bench/profiles.py

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/setup.sh tools/asyncapi/package-lock.json tools/console/package-lock.json
	bash scripts/setup.sh $(VENV)
	touch $(STAMP)

clean:
	rm -rf $(VENV) .choreo
