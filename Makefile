# Two commands do all the set-up (see README): `make book` and `make test`.
# Both create .venv from the pinned requirements.lock on first use.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
PROFILE ?= quick

# Offline copies of the datasets live beside the project root in this workplace and in CI.
ifneq ($(wildcard ../shared/data/MANIFEST.md),)
export RELUSTUDY_DATA ?= $(abspath ../shared/data)
endif
# Keep progress bars and BLAS threads sane on the 2-core machines.
export PYTHONHASHSEED := 0

.PHONY: pdf screenshots faults venv book test smoke-book clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; set PYTHON=/path/to/python3.11" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

# Build the published book from the results store (committed `quick` records are reused).
book: venv
	$(BIN)/relustudy book --profile $(PROFILE)

# The book and, first, the whole book as one PDF (Chromium prints the single-page build; the
# introduction links it). Installs Debian's chromium and poppler-utils when missing (root).
# The first screen of the introduction, the summary and each chapter of the built book (at 1400x900
# and on a phone), for people to look at: docs/screenshots/.
screenshots: venv
	$(BIN)/python tests/browser_check.py _build/html docs/screenshots

pdf: venv
	@command -v chromium >/dev/null || apt-get install -y chromium
	@command -v pdftoppm >/dev/null || apt-get install -y poppler-utils
	$(BIN)/relustudy book --profile $(PROFILE) --pdf

# The fault-injection suite, recorded: the methods page shows the committed record (about 5
# CPU-minutes on an idle 2-core machine; `make test` runs a short version).
faults: venv
	$(BIN)/python -m relustudy.faults suite --out results/faults/fault_suite.json

# The test command CI runs (.ci/run): lint and format check (ruff), unit tests, the end-to-end
# smoke book build, and nbval over the notebooks with their smoke defaults, in one pytest session
# over two xdist workers (one per core; tests/conftest.py hands them whole files, and the smoke
# book with the notebooks as one).
test: venv
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/python -m pytest -q -n 2 --durations=15 --nbval-lax tests notebooks

clean:
	rm -rf _build book/chapters
