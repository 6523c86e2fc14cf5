# The commands the README names. Each target is a thin wrapper around a script in scripts/.
.PHONY: demo demo-down test build testenv cluster-up cluster-down fmt lint bench fuzz faults

CLUSTER_DIR ?= .demo/cluster

## demo: build ferry and the local control plane, start it and print how to use it
demo:
	scripts/demo.sh

## demo-down: stop what `make demo` started
demo-down:
	scripts/demo.sh down

## test: formatting, lints, Go and Rust tests against a local control plane (what CI runs)
test:
	scripts/test.sh

## bench: the engine benchmark (bench/README.md): make bench [N="1 100 1000"] [PROFILE=configmap|deployment] [BENCH_ARGS=--quick]
N ?= 1 100 1000
PROFILE ?= configmap
bench:
	bench/engine/run.sh --n $(N) --profile $(PROFILE) $(BENCH_ARGS)

## fuzz: long runs of the property tests: make fuzz [FUZZ_SECONDS=3600] [FUZZ_CASES=20000]
fuzz:
	scripts/fuzz.sh

## faults: the kill -9 fault harness at full size: make faults [ROUNDS=50]
ROUNDS ?= 50
faults:
	scripts/faults.sh $(ROUNDS)

## build: build ferry (debug) and the testenv binary
build: testenv
	cargo build --workspace --locked

## testenv: build the local control plane binary (cached until testenv/ changes)
testenv:
	scripts/local-cluster.sh build

## cluster-up / cluster-down: a control plane in $(CLUSTER_DIR) for working by hand
cluster-up:
	scripts/local-cluster.sh up $(CLUSTER_DIR)

cluster-down:
	scripts/local-cluster.sh down $(CLUSTER_DIR)

## fmt: format Rust and Go sources
fmt:
	cargo fmt --all
	cd testenv && gofmt -w .

## lint: what CI checks besides the tests
lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	cd testenv && go vet ./...
