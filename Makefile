# The two commands of the README: `make demo` and `make test`. Each sets itself up.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: demo test install lint bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# torch==2.13.0 first: it is the CPU wheel on this machine's disk; any other spec would
# pull a multi-GB CUDA build through the package's own dependency.
$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[all,test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/netxray demo
	@echo
	@echo "netxray is installed in $(VENV)/: run 'source $(BIN)/activate' to put it on your PATH,"
	@echo "or call it as $(BIN)/netxray (e.g. $(BIN)/netxray diagnose --preset dying_relu)."

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run_all $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info netxray-out
