# Newcomer commands: `make demo` (server on simulated boards) and `make test`.
# Each creates .venv, installs what it needs (system packages via apt-get when
# run as root or with passwordless sudo), builds the native parts, and runs.

# Debian's own python3 where there is one: the interpreter a site runs the server
# on (a profile-guided build: the call controller costs ~15 % less CPU on it than
# on a plain source build such as pyenv's); else python3 on PATH. PYTHON=... overrides.
PYTHON ?= $(firstword $(wildcard /usr/bin/python3) python3)
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
CFLAGS_STRICT := -std=c11 -O1 -g -Wall -Wextra -Werror -D_GNU_SOURCE
EXT_SRC := ext/vb_core.c ext/vb_sim.c ext/vb_simdev.c ext/vb_dahdi.c
# The DAHDI device emulator (LD_PRELOAD library): the host side of the board
# library plus the /dev/dahdi interposer.
EMU_SO  := boarddrv/libvbdahdi.so
EMU_SRC := ext/dahdi_emu.c ext/vb_core.c ext/vb_sim.c ext/vb_dahdi.c

.PHONY: all deps venv build lint test test-fast pytest pytest-dahdi ctest demo bench clean test-hardware

all: build

deps:
	@bash .ci/install-system-packages.sh

$(STAMP): setup.py pyproject.toml
	$(MAKE) deps
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q "setuptools>=77" wheel "Cython>=3.0" "cffi>=1.16" "numpy>=1.24"
	$(PIP) install -q --no-build-isolation -e ".[test,lint]"
	touch $(STAMP)

venv: $(STAMP)

# Rebuild the extensions in place (C and .pyx changes), and compile the
# sources to byte code once (an editable install does not): the QA tools'
# cold start would otherwise compile dsp/ and boarddrv/ at every run.
build: $(STAMP) $(EMU_SO)
	$(PY) setup.py -q build_ext --inplace
	$(PY) -m compileall -q boarddrv dsp voiceserver hwsim

$(EMU_SO): $(EMU_SRC) $(wildcard ext/*.h)
	cc $(CFLAGS_STRICT) -O2 -fPIC -shared -fvisibility=hidden -Iext -o $@ $(EMU_SRC) -ldl -lpthread -lrt

# Static checks (configured in pyproject.toml): ruff, then mypy.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

test: build ctest pytest pytest-dahdi

# The unit tests only (marker `unit`: no child processes, no wall clock), on
# every core (pytest-xdist); under a minute.
test-fast: build
	$(PY) -m pytest -q -m unit -n auto tests

pytest: build
	$(PY) -m pytest -q tests

# The IVR, recording and ACD end-to-end tests again, their boards opened as
# dahdi:// through the DAHDI emulator (preloaded into pytest itself).
DAHDI_E2E := tests/server/test_e2e.py tests/server/test_e2e_recording.py tests/server/test_e2e_acd.py
pytest-dahdi: build
	LD_PRELOAD=$(CURDIR)/$(EMU_SO) $(PY) -m pytest -q --board-via-dahdi $(DAHDI_E2E)

# The board contract (tests/hardware) on any board: on a machine with a card,
#   make test-hardware URI=dahdi://
test-hardware: build
	@test -n "$(URI)" || { echo "usage: make test-hardware URI=dahdi:// (or sim://NAME)" >&2; exit 2; }
	VB_TEST_URI="$(URI)" $(PY) -m pytest -q tests/hardware

# C-level tests of the board library and of the DTMF receiver kernel (linked
# into dsp._dtmf by setup.py) under AddressSanitizer + UBSan.
ctest:
	@mkdir -p tests/c/build
	cc $(CFLAGS_STRICT) -fsanitize=address,undefined -fno-omit-frame-pointer \
	   -Iext -o tests/c/build/test_vb tests/c/test_vb.c $(EXT_SRC) -lpthread -lrt
	ASAN_OPTIONS=detect_leaks=1 tests/c/build/test_vb
	cc $(CFLAGS_STRICT) -fsanitize=address,undefined -fno-omit-frame-pointer \
	   -Iext -o tests/c/build/test_dtmf_kernel tests/c/test_dtmf_kernel.c ext/dtmf_kernel.c -lm
	ASAN_OPTIONS=detect_leaks=1 tests/c/build/test_dtmf_kernel

demo: build
	$(VENV)/bin/voiceboard demo

bench: build
	$(PY) bench/board_ticks.py
	$(PY) bench/dsp.py
	$(PY) bench/recording.py --max 960

clean:
	rm -rf build tests/c/build $(VENV) *.egg-info
	find . -name '*.so' -not -path './.venv/*' -delete
