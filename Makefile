# Front door. `make run` and `make check` do all set-up on Debian 12 as root.
BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
PY := /usr/bin/python3.11
DEBS := meson ninja-build pkg-config gcc libc6-dev libevent-dev libjansson-dev \
	libseccomp-dev libcap-dev libpython3.11-dev python3.11 libcmocka-dev python3-pytest \
	python3-numpy python3-pandas python3-scipy python3-sympy python3-matplotlib \
	python3-sklearn libopenblas0 curl python3-pip python3-setuptools python3-wheel
# make fuzz only: libFuzzer comes with clang's runtime; llvm-symbolizer names
# the frames of a crash.
FUZZ_DEBS := clang-14 libclang-rt-14-dev llvm-14
LIBEVENT_MIN := 2.1.12-stable-8+deb12u1
# The cgroup v2 guest (tests/guest): qemu, and Debian 12's kernel and a
# static busybox unpacked into build/guest from their packages (nothing is
# installed in /boot).
GUEST_DEBS := qemu-system-x86 cpio
GUEST_DIR := build/guest

# The integration tests that run a second time against the ASan+UBSan build:
# everything that drives the daemon and the CLI through their real paths
# (HTTP, engine, zygote, sandbox set-up and runs). The deny, allow, sabotage
# and client suites run against the plain build only: they test the
# sandbox's walls and the Python client, not more C code, and under ASan they
# would double the time of make check.
ASAN_TESTS := $(wildcard tests/integration/test_daemon_*.py) tests/integration/test_http_slow_clients.py \
	tests/integration/test_cli.py tests/integration/test_results.py tests/integration/test_limits.py \
	tests/integration/test_values.py
# Not in the sanitized pass: tests whose point is a wall-clock budget for the
# production build that counts the CLI's own start (about 1 s more under ASan,
# where Python starts on ASan's allocator) or a full preload (10 s and more).
# They run in the plain pass.
ASAN_DESELECT := test_limits.py::test_fork_until_failure_hits_pids_max test_limits.py::test_fork_bomb_is_contained \
	test_limits.py::test_busy_loop_ignoring_signals_times_out test_limits.py::test_catastrophic_regex_times_out \
	test_limits.py::test_background_child_is_killed_when_main_exits \
	test_results.py::test_output_kept_when_cpu_is_contended test_daemon_api.py::test_starting_answers_503_until_ready
# Where the sanitized pyrunnerd, pyrunner and pyrunner-zygote write their
# reports (compiled in: tests/sanitizer/meson.build). Emptied before each run;
# any file in it afterwards fails the run, so a report counts even from a
# process that a test killed later. World-writable: a sandbox's pid 1 is in
# the host's mount namespace as the sandbox user. What is sanitized, and
# where a sandbox's pid 2 reports: README, "What the sanitized run covers".
SAN_LOGS := $(ASAN_BUILD)/sanitizer-logs

.PHONY: all deps fuzz-deps guest-deps build asan run check check-v2 unit integration integration-asan bench soak \
	chaos install clean fuzz

all: build

# $(call install-debs,PACKAGES[,SHELL WORDS OF MORE PACKAGES]): installs
# those that are missing, as root; nothing when all are there.
define install-debs
	@missing=$$(for p in $(1); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	missing="$$missing $(2)"; \
	if [ -n "$$(echo $$missing)" ]; then \
		echo "Installing:$$missing"; \
		if [ "$$(id -u)" != 0 ]; then echo "make: run as root to install packages" >&2; exit 1; fi; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
endef

deps:
	$(call install-debs,$(DEBS),$$(dpkg --compare-versions "$$(dpkg-query -W -f='$${Version}' libevent-dev 2>/dev/null || echo 0)" ge $(LIBEVENT_MIN) || echo libevent-dev))

fuzz-deps: deps
	$(call install-debs,$(FUZZ_DEBS))

guest-deps: deps
	$(call install-debs,$(GUEST_DEBS))
	@if ! ls $(GUEST_DIR)/boot/vmlinuz-6.1.* >/dev/null 2>&1 || [ ! -x $(GUEST_DIR)/bin/busybox ]; then \
		set -e; rm -rf $(GUEST_DIR) && mkdir -p $(GUEST_DIR)/debs && cd $(GUEST_DIR)/debs; \
		apt-get update -qq; \
		kernel=$$(apt-cache depends linux-image-amd64 | sed -n 's/^ *Depends: \(linux-image-6\.1[^ ]*\)$$/\1/p' | head -1); \
		[ -n "$$kernel" ] || { echo "make: apt offers no linux-image-6.1 kernel" >&2; exit 1; }; \
		echo "Unpacking $$kernel and busybox-static into $(GUEST_DIR)"; \
		apt-get download -qq $$kernel busybox-static; \
		for d in *.deb; do dpkg-deb -x $$d ..; done; cd .. && rm -rf debs; \
	fi

$(BUILD)/build.ninja:
	meson setup $(BUILD) --buildtype=debugoptimized >/dev/null

build: deps $(BUILD)/build.ninja
	@ninja -C $(BUILD) >/dev/null || ninja -C $(BUILD)

$(ASAN_BUILD)/build.ninja:
	meson setup $(ASAN_BUILD) -Db_sanitize=address,undefined -Db_lundef=false \
		-Dc_args=-fno-sanitize-recover=all >/dev/null

asan: deps $(ASAN_BUILD)/build.ninja
	@ninja -C $(ASAN_BUILD) >/dev/null || ninja -C $(ASAN_BUILD)

run: build
	@if [ -x $(BUILD)/src/daemon/pyrunnerd ]; then exec $(BUILD)/src/daemon/pyrunnerd; fi; \
	for f in examples/*.py; do echo "== $$f"; $(BUILD)/src/cli/pyrunner run --preload all $$f; done

# Each suite deletes its old results first: one that cannot run is then
# missing from the summary (a failure) instead of passing on stale files.
RUN_UNIT = rm -f $(ASAN_BUILD)/meson-logs/testlog.json; \
	meson test -C $(ASAN_BUILD) --print-errorlogs --suite unit
RUN_INTEGRATION = rm -f $(BUILD)/pytest.xml; \
	$(PY) -m pytest -q -p no:cacheprovider --junitxml=$(BUILD)/pytest.xml tests/integration
RUN_INTEGRATION_ASAN = rm -rf $(ASAN_BUILD)/pytest.xml $(SAN_LOGS) && mkdir -m 1777 $(SAN_LOGS) && \
	PYRUNNER_BUILD=$(ASAN_BUILD) $(PY) -m pytest -q -p no:cacheprovider \
		--junitxml=$(ASAN_BUILD)/pytest.xml $(addprefix --deselect tests/integration/,$(ASAN_DESELECT)) $(ASAN_TESTS)
SUMMARY_ASAN = --junit integration-asan=$(ASAN_BUILD)/pytest.xml --sanitizer-logs $(SAN_LOGS)
# $(call RUN_GUEST,short|full): the guest's tests; its JUnit XML comes back
# through the guest's second serial port. No guest, no file: a failure.
RUN_GUEST = rm -f $(BUILD)/guest-$(1).xml; \
	$(PY) tests/guest/guest.py --out $(BUILD)/guest-$(1).xml -- sh tests/guest/run-tests.sh $(1)

unit: asan
	@$(RUN_UNIT)

integration: build
	@$(RUN_INTEGRATION)

integration-asan: asan
	@$(RUN_INTEGRATION_ASAN); $(PY) tools/summarize.py $(SUMMARY_ASAN)

# Every suite runs whatever the one before it did; the summary decides.
check: build asan
	@$(MAKE) --no-print-directory guest-deps || echo "make: no guest deps; the guest suite will count as failed"
	@$(RUN_UNIT) || true
	@$(RUN_INTEGRATION) || true
	@$(RUN_INTEGRATION_ASAN) || true
	@$(call RUN_GUEST,short) || true
	@$(PY) tools/summarize.py --meson unit=$(ASAN_BUILD)/meson-logs/testlog.json \
		--junit integration=$(BUILD)/pytest.xml $(SUMMARY_ASAN) --junit guest-v2=$(BUILD)/guest-short.xml

# The whole guest suite on Debian 12's kernel with cgroup v2 only (slow:
# software emulation).
check-v2: build asan guest-deps
	@$(call RUN_GUEST,full) || true
	@$(PY) tools/summarize.py --junit guest-v2=$(BUILD)/guest-full.xml

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

$(FUZZ_BUILD)/build.ninja:
	CC=clang-14 meson setup $(FUZZ_BUILD) -Dfuzz=true -Dtests=false >/dev/null

# Every executable that tests/fuzz/meson.build defines runs FUZZ_SECONDS
# with its seed corpus tests/fuzz/corpus/NAME (read only; new inputs go to
# $(FUZZ_BUILD)/corpus/NAME). A crash, leak or timeout fails, and its input
# is kept in $(FUZZ_BUILD)/artifacts.
fuzz: fuzz-deps $(FUZZ_BUILD)/build.ninja
	@ninja -C $(FUZZ_BUILD) >/dev/null || ninja -C $(FUZZ_BUILD)
	@targets=$$(meson introspect --targets $(FUZZ_BUILD) | $(PY) -c 'import json, sys; \
		print(" ".join(f for t in json.load(sys.stdin) if t["type"] == "executable" \
		and t["defined_in"].endswith("tests/fuzz/meson.build") for f in t["filename"]))'); \
	[ -n "$$targets" ] || { echo "make fuzz: no fuzz targets built" >&2; exit 1; }; \
	mkdir -p $(FUZZ_BUILD)/artifacts; failed=; \
	for exe in $$targets; do \
		name=$$(basename $$exe); seeds=tests/fuzz/corpus/$$name; \
		mkdir -p $(FUZZ_BUILD)/corpus/$$name; \
		echo "== $$name: $(FUZZ_SECONDS) s"; \
		$$exe -max_total_time=$(FUZZ_SECONDS) -timeout=10 -print_final_stats=1 \
			-artifact_prefix=$(FUZZ_BUILD)/artifacts/$$name- \
			$(FUZZ_BUILD)/corpus/$$name $$( [ -d $$seeds ] && echo $$seeds) \
			>$(FUZZ_BUILD)/$$name.log 2>&1 \
		&& grep -E '^(stat::number_of_executed_units|#[0-9]+.*DONE)' $(FUZZ_BUILD)/$$name.log \
		|| { tail -n 40 $(FUZZ_BUILD)/$$name.log; failed="$$failed $$name"; }; \
	done; \
	if [ -n "$$failed" ]; then echo "make fuzz: failed:$$failed (inputs in $(FUZZ_BUILD)/artifacts)" >&2; exit 1; fi; \
	echo "make fuzz: $$(echo $$targets | wc -w) targets, no crash"

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
