# zeroskip: `make demo` runs the main job, `make test` the test suite. Both set up first.
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.setup-$(shell cat pyproject.toml scripts/setup.sh | sha1sum | cut -c1-12)
PYTEST_ARGS ?=

.PHONY: setup demo test test-fast fuzz bench lint synth wheel clean

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/setup.sh
	bash scripts/setup.sh
	rm -f $(VENV)/.setup-*
	touch $@

demo: setup
	$(BIN)/zeroskip demo

test: setup
	$(BIN)/python -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

# the edit-run loop: everything but the RTL simulations and the EDA flows (about a minute)
test-fast: setup
	$(BIN)/python -m pytest -n 2 --dist loadgroup -m "not rtl and not eda" $(PYTEST_ARGS)

fuzz: setup
	$(BIN)/python -m pytest -n 2 --dist loadgroup --fuzz -m "slow" $(PYTEST_ARGS)

bench: setup
	$(BIN)/zeroskip bench

lint: setup
	$(BIN)/python -c "from zeroskip.driver.tools import tool_env; import subprocess, sys; sys.exit(subprocess.call(['$(BIN)/fusesoc', 'run', '--target', 'lint', 'zeroskip'], env=tool_env()))"

synth: setup
	$(BIN)/python -m zeroskip.host.bench.resources --lanes 4,8,16,32

# the pure-Python wheel for the board (installs with pip --no-deps, no build step there)
wheel: setup
	$(BIN)/python -m pip wheel -q --no-deps -w dist .
	@ls dist/zeroskip-*-py3-none-any.whl

clean:
	rm -rf outputs build dist .pytest_cache
