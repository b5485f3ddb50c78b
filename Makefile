# The front door. `make run` and `make test` do all set-up (Debian packages) themselves.
JOBS ?= $(shell nproc)
CTEST_ARGS ?= --output-on-failure -j $(JOBS) --timeout 300

.PHONY: setup run test test-release test-asan test-tsan build bench bench-peers format clean

setup:
	@bash scripts/setup.sh

build: setup
	cmake --preset release >/dev/null
	cmake --build --preset release -j $(JOBS)

run: build
	@bash scripts/run_flagship.sh build/release

test: setup test-release test-asan test-tsan
	@echo "make test: all suites passed (release, asan+ubsan, tsan)"

test-release: setup
	cmake --preset release >/dev/null
	cmake --build --preset release -j $(JOBS)
	ctest --preset release $(CTEST_ARGS)

test-asan: setup
	cmake --preset asan >/dev/null
	cmake --build --preset asan -j $(JOBS)
	ctest --preset asan $(CTEST_ARGS)

test-tsan: setup
	cmake --preset tsan >/dev/null
	cmake --build --preset tsan -j $(JOBS)
	ctest --preset tsan $(CTEST_ARGS)

bench: build
	build/release/bench/micro/tmr_bench_micro

# tmr against OpenMP (libgomp, libomp), oneTBB flow graph and StarPU, all pinned to cores 0-1.
bench-peers: setup
	cmake --preset release >/dev/null
	cmake --build --preset release --target tmr_bench_peers -j $(JOBS)
	taskset -c 0,1 build/release/bench/peers/tmr_bench_peers --json bench/peers/results.json

format:
	clang-format -i $$(git ls-files '*.cpp' '*.hpp')

clean:
	rm -rf build
