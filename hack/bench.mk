# Benchmarks: 'make bench' runs every scenario of test/bench at the published sizes and writes
# JSON into bench-results/; BENCH_SIZE=small is the quick correctness run (also part of make test).
BENCH_SIZE ?= full
BENCH_FLAGS ?=

.PHONY: bench
bench: packages-test control-plane build ## Run the scale and latency benchmarks (BENCH_SIZE=small|full, BENCH_FLAGS="--nodes 1000").
	go run ./cmd/edgetwin-bench --size $(BENCH_SIZE) --bin-dir bin --out bench-results $(BENCH_FLAGS)
