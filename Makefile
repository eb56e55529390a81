# tern: the two commands of the README, and the steps behind them.
#   make        optimised build into build/
#   make run    install what is missing, build, start ternd on 127.0.0.1:2525
#   make test   install, build (optimised and ASan/UBSan), run every test
PYTHON ?= /usr/bin/python3
MESON_ASAN = -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug


.PHONY: all deps test-deps run test unit blackbox asan blackbox-asan clean bench

all: build/build.ninja
	ninja -C build

build/build.ninja:
	meson setup build --buildtype=release

build-asan/build.ninja:
	CC=clang meson setup build-asan $(MESON_ASAN)

asan: build-asan/build.ninja
	ninja -C build-asan

deps:
	@scripts/install-deps

test-deps:
	@scripts/install-deps test

run: deps all
	build/ternd

unit: all
	meson test -C build --print-errorlogs

blackbox: all
	$(PYTHON) -m pytest -q tests/blackbox

blackbox-asan: asan
	TERND=$(CURDIR)/build-asan/ternd \
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	$(PYTHON) -m pytest -q tests/blackbox

test: test-deps
	$(MAKE) all asan
	meson test -C build --print-errorlogs
	meson test -C build-asan --print-errorlogs
	$(PYTHON) -m pytest -q tests/blackbox
	$(MAKE) blackbox-asan

clean:
	rm -rf build build-asan

# The benchmark against Postfix, Exim and OpenSMTPD (root; see bench/README.md).
# BENCH_QUICK=1 for a short run.
bench: all
	$(PYTHON) bench/run
