# Quick start: `make demo` runs a real model end to end, `make test` runs the tests.
# Each target sets up what it needs: the virtualenv, the package, and graphviz's `dot`.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: demo test test-fast bench clean dot

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e .
	touch $@

$(TEST_STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@ $(STAMP)

# graphviz's `dot` binary (for model pictures), installed with apt-get when missing and root.
dot:
	@command -v dot >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz >/dev/null) \
	      || echo "warning: could not install graphviz; model pictures will be unavailable"; \
	  else echo "warning: graphviz 'dot' is missing; install it for model pictures"; fi; }

demo: $(STAMP) dot
	$(BIN)/python examples/supernova/demo.py out

test: $(TEST_STAMP) dot
	$(BIN)/python -m pytest -n 2 --dist worksteal -q

test-fast: $(TEST_STAMP)
	$(BIN)/python -m pytest -n 2 -q -m "not slow"

# The peers: NumPyro (the `test` extra), BlackJAX, nutpie with PyMC, and funsor for
# NumPyro's mixture (the `bench` extra).
bench: $(TEST_STAMP)
	@$(BIN)/python -c "import funsor, blackjax, nutpie, pymc" 2>/dev/null || $(BIN)/pip install --quiet -e ".[test,bench]"
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) out .pytest_cache
