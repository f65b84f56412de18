# Front door. `make run` and `make check` do all set-up on Debian 12 as root.
BUILD ?= build
ASAN_BUILD ?= build-asan
PY := /usr/bin/python3.11
DEBS := meson ninja-build pkg-config gcc libc6-dev libevent-dev libjansson-dev \
	libseccomp-dev libcap-dev libpython3.11-dev python3.11 libcmocka-dev python3-pytest \
	python3-numpy python3-pandas python3-scipy python3-sympy python3-matplotlib \
	python3-sklearn libopenblas0 curl python3-pip python3-setuptools python3-wheel
LIBEVENT_MIN := 2.1.12-stable-8+deb12u1

.PHONY: all deps build run check unit integration bench soak chaos install clean fuzz

all: build

deps:
	@missing=$$(for p in $(DEBS); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	old=$$(dpkg --compare-versions "$$(dpkg-query -W -f='$${Version}' libevent-dev 2>/dev/null || echo 0)" ge $(LIBEVENT_MIN) || echo libevent-dev); \
	if [ -n "$$missing$$old" ]; then \
		echo "Installing: $$missing $$old"; \
		if [ "$$(id -u)" != 0 ]; then echo "make deps: run as root to install packages" >&2; exit 1; fi; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing $$old >/dev/null; \
	fi

$(BUILD)/build.ninja:
	meson setup $(BUILD) --buildtype=debugoptimized >/dev/null

build: deps $(BUILD)/build.ninja
	@ninja -C $(BUILD) >/dev/null || ninja -C $(BUILD)

$(ASAN_BUILD)/build.ninja:
	meson setup $(ASAN_BUILD) -Db_sanitize=address,undefined -Db_lundef=false \
		-Dc_args=-fno-sanitize-recover=all >/dev/null

run: build
	@if [ -x $(BUILD)/src/daemon/pyrunnerd ]; then exec $(BUILD)/src/daemon/pyrunnerd; fi; \
	for f in examples/*.py; do echo "== $$f"; $(BUILD)/src/cli/pyrunner run --preload all $$f; done

unit: deps $(ASAN_BUILD)/build.ninja
	@ninja -C $(ASAN_BUILD) >/dev/null || ninja -C $(ASAN_BUILD)
	-@meson test -C $(ASAN_BUILD) --print-errorlogs --suite unit >/dev/null 2>&1 || true

integration: build
	-@$(PY) -m pytest -q -p no:cacheprovider --junitxml=$(BUILD)/pytest.xml tests/integration || true

check: build unit integration
	@$(PY) tools/summarize.py $(ASAN_BUILD)/meson-logs/testlog.json $(BUILD)/pytest.xml

bench: build
	@$(PY) bench/bench.py --build $(BUILD)
	@echo
	@$(PY) bench/http_bench.py --build $(BUILD)

# Long runs of tools/soak.py (not in `make check`, which has short ones):
# `make soak SOAK_RUNS=3000`, `make chaos CHAOS_REPEAT=10`, extra flags in SOAK_ARGS.
SOAK_RUNS ?= 100000
SOAK_SECONDS ?= 7200
CHAOS_REPEAT ?= 5
SOAK_ARGS ?=

soak: build
	@$(PY) tools/soak.py --daemon $(BUILD)/src/daemon/pyrunnerd --runs $(SOAK_RUNS) --seconds $(SOAK_SECONDS) $(SOAK_ARGS)

chaos: build
	@$(PY) tools/soak.py --daemon $(BUILD)/src/daemon/pyrunnerd --chaos --repeat $(CHAOS_REPEAT) $(SOAK_ARGS)

install: build
	meson install -C $(BUILD)
	$(PY) -m pip install --quiet --no-build-isolation --no-index --break-system-packages ./clients/python

fuzz: deps
	CC=clang-14 meson setup build-fuzz -Dfuzz=true -Dtests=false >/dev/null 2>&1 || true
	ninja -C build-fuzz

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz
