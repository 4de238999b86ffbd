# Two commands for a newcomer: `make demo` and `make test` (see README.md).
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/pip install --disable-pip-version-check -q -c constraints.txt

.PHONY: demo test install install-dev system-deps lint typecheck pytest bench lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)

# vpdq (the `video` extra: video hashes) is an sdist that compiles against FFmpeg's
# libraries, and the console's browser tests drive Debian's Chromium; on a fresh
# Debian machine install them first, and only when missing.
AV_DEBS := ffmpeg libavcodec-dev libavformat-dev libavutil-dev libswscale-dev \
	libswresample-dev libavdevice-dev libavfilter-dev pkg-config g++ chromium
AV_LIBS := libavcodec libavformat libavutil libswscale libswresample libavdevice libavfilter
SUDO    := $(if $(filter 0,$(shell id -u)),,sudo)

system-deps:
	@if pkg-config --exists $(AV_LIBS) 2>/dev/null && command -v c++ >/dev/null \
	  && test -x /usr/bin/chromium; then :; else \
	  echo "installing FFmpeg development packages (vpdq) and Chromium (console tests; needs root or sudo)"; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	    --no-install-recommends $(AV_DEBS); fi

$(VENV)/.core: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) -e .
	touch $@

$(VENV)/.dev: $(VENV)/.core | system-deps
	$(PIP) -e ".[dev,bench,text,video]"
	touch $@

install: $(VENV)/.core
install-dev: $(VENV)/.dev

demo: install
	$(BIN)/trustfeed demo

lint: install-dev
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/ruff check src tests benchmarks

typecheck: install-dev
	$(BIN)/mypy

pytest: install-dev
	$(BIN)/pytest -q

test: lint typecheck pytest

bench: install-dev
	$(BIN)/trustfeed bench quality --dataset ml-100k
	$(BIN)/trustfeed bench quality --dataset beauty
	$(BIN)/trustfeed bench ranker
	$(BIN)/trustfeed bench online
	$(BIN)/python benchmarks/bench_ledger.py
	$(BIN)/python benchmarks/bench_policy.py
	$(BIN)/python benchmarks/bench_moderation.py
	$(BIN)/python benchmarks/bench_vpdq.py
	$(BIN)/python benchmarks/bench_text.py

# Re-pin constraints.txt from a fresh resolution of pyproject.toml (all extras).
lock: system-deps
	rm -rf .lockenv && $(PYTHON) -m venv .lockenv
	.lockenv/bin/pip install -q -e ".[dev,bench,text,video]"
	.lockenv/bin/pip freeze --exclude-editable | grep -v '^trustfeed' > constraints.txt
	rm -rf .lockenv

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
