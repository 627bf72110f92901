# `make demo` and `make test` set up .venv on first use (pinned versions from
# requirements.lock; torch 2.14.1 / torchvision 0.29.1), then run.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.srgan-installed

.PHONY: demo test setup clean

setup: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $(STAMP)

demo: $(STAMP)
	$(PY) scripts/demo.py examples/coffee.png examples/out

test: $(STAMP)
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) examples/out .pytest_cache
