# Short commands over CMake. Builds go to build/ (plain), build-asan/ (AddressSanitizer +
# UndefinedBehaviorSanitizer) and build-tsan/ (ThreadSanitizer).
PREFIX ?= /usr/local
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=
DESTDIR ?=
SHARED_BENCH ?= $(abspath ../shared/bench)
BENCH_WORKLOADS ?= spawn,yield,sleepers,pingpong,queue,echo

.PHONY: all build run test test-plain test-asan test-tsan test-valgrind stress bench deps install clean

all: build

deps:
	@./scripts/deps.sh

build/Makefile: CMakeLists.txt
	cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=$(PREFIX) $(CMAKE_FLAGS)

build: build/Makefile
	cmake --build build -j $(JOBS)

# The main job: a tour of the seed ports, one after another.
run: deps build
	./examples/tour.sh build

test: deps test-plain test-asan test-tsan

test-plain: build
	cd build && ctest --output-on-failure -j $(JOBS) --timeout 300

build-asan/Makefile: CMakeLists.txt
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWEFT_SANITIZE=address,undefined \
	  -DWEFT_BUILD_BENCH=OFF $(CMAKE_FLAGS)

test-asan: build-asan/Makefile
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  ctest --output-on-failure -j $(JOBS) --timeout 300

build-tsan/Makefile: CMakeLists.txt
	cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWEFT_SANITIZE=thread \
	  -DWEFT_BUILD_BENCH=OFF -DWEFT_BUILD_EXAMPLES=OFF $(CMAKE_FLAGS)

# ThreadSanitizer runs the tests labelled "tsan" (the ones that switch stacks or use threads).
test-tsan: build-tsan/Makefile
	cmake --build build-tsan -j $(JOBS)
	cd build-tsan && ctest --output-on-failure -j $(JOBS) --timeout 300 -L tsan

test-valgrind: build
	cd build && ctest --output-on-failure -j $(JOBS) -L memcheck

# 10,000 concurrent connections against an echo server (a child process), every byte checked.
stress: deps build
	./build/test/stress/net_stress 10000

bench: build
	@if [ -x "$(SHARED_BENCH)/run-peers" ]; then \
	  ./scripts/deps.sh bench && \
	  BENCH_EXTRA="weft=$(CURDIR)/build/bench" $(SHARED_BENCH)/run-peers -w $(BENCH_WORKLOADS); \
	else \
	  for w in $$(echo $(BENCH_WORKLOADS) | tr , ' '); do \
	    [ $$w = echo ] || taskset -c 0 ./build/bench/$$w; done; \
	fi

install: build
	cmake -S . -B build -DCMAKE_INSTALL_PREFIX=$(PREFIX) >/dev/null
	cmake --build build -j $(JOBS)
	DESTDIR=$(DESTDIR) cmake --install build

clean:
	rm -rf build build-asan build-tsan
