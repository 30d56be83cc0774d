# The two set-up commands of the README:
#   make run   - install what is missing, build, train the main example
#   make test  - install what is missing, build, run the whole test suite
BUILD ?= build
JOBS  ?= $(shell nproc)
MAIN  ?= train_fashion_mnist
ARGS  ?=

.PHONY: run test build configure deps deps-run deps-bench bench clean test-asan test-tsan fuzz deps-fuzz

deps:
	@scripts/install-deps.sh core

deps-run:
	@scripts/install-deps.sh run

deps-bench:
	@scripts/install-deps.sh bench

deps-fuzz:
	@scripts/install-deps.sh fuzz

configure:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release > /dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

# Builds only the program it runs (and the library).
run: deps-run configure
	@cmake --build $(BUILD) -j $(JOBS) --target $(MAIN)
	@./$(BUILD)/examples/$(MAIN) $(ARGS)

test: deps build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# Sanitizer builds (CMakePresets.json: asan, tsan), each in its own folder, through ccache when
# there is one. test-asan: the whole suite under AddressSanitizer + UBSan with leak checks.
# test-tsan: ThreadSanitizer on the parallel, RNG, determinism and data tests (scripts/tsan.supp).
SAN_LAUNCHER := $(if $(shell command -v ccache 2>/dev/null),-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
TSAN_TESTS   := test_parallel test_determinism test_core test_nn

test-asan: deps
	@cmake --preset asan $(SAN_LAUNCHER) > /dev/null
	@cmake --build build-asan -j $(JOBS)
	@ctest --preset asan -j $(JOBS)

test-tsan: deps
	@cmake --preset tsan $(SAN_LAUNCHER) > /dev/null
	@cmake --build build-tsan -j $(JOBS) --target $(TSAN_TESTS)
	@scripts/run-tsan.sh build-tsan

# libFuzzer targets (tests/fuzz/, clang), each run for FUZZ_SECONDS from a seed corpus the library
# writes itself; a crash leaves its input in build-fuzz/artifacts/ and fails the target.
FUZZ_SECONDS ?= 60
fuzz: deps-fuzz
	@cmake --preset fuzz $(SAN_LAUNCHER) > /dev/null
	@cmake --build build-fuzz -j $(JOBS) --target sorix_fuzz_targets
	@scripts/run-fuzz.sh build-fuzz $(FUZZ_SECONDS)

# Benchmarks print tables beside PyTorch / memory-bandwidth baselines (see docs/benchmarks.md).
bench: deps-bench build
	@./$(BUILD)/examples/bench_dropout
	@./$(BUILD)/examples/bench_training
	@./$(BUILD)/examples/bench_determinism
	@./$(BUILD)/examples/bench_products
	@./$(BUILD)/examples/bench_layers
	@cd $(BUILD) && ./examples/parallel_scaling

clean:
	rm -rf $(BUILD)
