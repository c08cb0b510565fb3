# The two commands of the README: `make demo` and `make test`. Each creates .venv if missing, and makes it again
# when PYTHON names another interpreter than the one .venv was made with.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.kiln-installed

.PHONY: demo test lint clean bytecode container-tools browser postgresql FORCE

# A PYTHON given on the command line or in the environment is compared with .venv's own interpreter (version and
# installation: a venv's sys.base_prefix is the interpreter it was made from); without one, .venv is kept.
PYID := import sys; print(sys.version.split()[0], sys.base_prefix)
ifneq ($(origin PYTHON),file)
ifneq ($(shell $(PYTHON) -c '$(PYID)' 2>&1),$(shell $(BIN)/python -c '$(PYID)' 2>/dev/null))
REMAKE_VENV := FORCE
endif
endif

$(BIN)/python: $(REMAKE_VENV)
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), sys.version' || \
		{ echo "make: PYTHON=$(PYTHON) is not a Python >= 3.10" >&2; exit 1; }
	@if [ -e $(VENV) ]; then echo "$(VENV) was made with another Python: making it again with $(PYTHON)"; fi
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml $(REMAKE_VENV) | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# bytecode for the editable install: an install from a wheel gets it from pip, and without it every
# kiln command compiles its modules again (~30 ms; more where PYTHONDONTWRITEBYTECODE is set)
bytecode: $(STAMP)
	$(BIN)/python -m compileall -q src/kiln

demo: bytecode
	bash demo/run.sh

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

# the container tools the image tests use (Debian packages; fast when already installed): skopeo and umoci check
# Kiln's images, podman (`podman system service`: the Docker-API engine) and buildah build and run them, runc
# and catatonit are podman's runtime and init, docker-registry is the local registry the tests push to
container-tools:
	@command -v skopeo >/dev/null && command -v umoci >/dev/null && command -v podman >/dev/null && \
		command -v runc >/dev/null && command -v catatonit >/dev/null && command -v buildah >/dev/null && \
		command -v docker-registry >/dev/null || \
		(apt-get update -q && apt-get install -y -q --no-install-recommends skopeo umoci podman runc catatonit \
			buildah docker-registry)

# Debian's Chromium, for the studio's browser tests (Playwright's own browser download is not reachable);
# nothing to do when it is there
browser:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -q && apt-get install -y -q --no-install-recommends chromium)


# the tests start their own throwaway PostgreSQL server (Debian's package; nothing is configured system-wide)
postgresql:
	@test -x /usr/lib/postgresql/15/bin/initdb || (apt-get update -q && apt-get install -y -q postgresql)

test: lint bytecode container-tools browser postgresql
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .kiln-demo .pytest_cache .mypy_cache .ruff_cache
