# The two set-up commands of the README:
#   make run   - install what is missing, build, train the main example
#   make test  - install what is missing, build, run the whole test suite
BUILD ?= build
JOBS  ?= $(shell nproc)
MAIN  ?= train_fashion_mnist
ARGS  ?=

.PHONY: run test build configure deps deps-run deps-bench bench clean

deps:
	@scripts/install-deps.sh core

deps-run:
	@scripts/install-deps.sh run

deps-bench:
	@scripts/install-deps.sh bench

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

# Benchmarks print tables beside PyTorch / memory-bandwidth baselines (see docs/benchmarks.md).
bench: deps-bench build
	@./$(BUILD)/examples/bench_dropout
	@./$(BUILD)/examples/bench_training
	@./$(BUILD)/examples/bench_determinism
	@./$(BUILD)/examples/bench_products
	@cd $(BUILD) && ./examples/parallel_scaling

clean:
	rm -rf $(BUILD)
