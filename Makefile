# hearth — the two commands that matter: `make run` and `make test`.
SHELL := /bin/bash
NPM ?= npm
VITEST_REPORT ?= .vitest-report.json

.PHONY: run test build deps system-deps typecheck lint unit integration bench bench-doc chaos fuzz clean generate image

## run: install what is needed, build, and start the single-node daemon on ./var
run: build
	node bin/hearth.js serve $(ARGS)

## test: install what is needed (npm packages, Debian servers), type-check, lint, run every test
test: deps build typecheck lint
	npx vitest run --reporter=default --reporter=json --outputFile.json=$(VITEST_REPORT)

deps: node_modules/.installed system-deps

system-deps:
	@scripts/install-system-deps.sh

node_modules/.installed: package.json package-lock.json
	$(NPM) ci --no-audit --no-fund
	@touch $@

build: node_modules/.installed
	npx tsc -p tsconfig.json
	@printf '{"revision":"%s"}\n' "$$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" > dist/build-info.json

typecheck: node_modules/.installed
	npx tsc -p tsconfig.test.json

lint: node_modules/.installed
	npx eslint .
	npx depcruise src --config .dependency-cruiser.mjs

unit: node_modules/.installed
	npx vitest run --project unit

integration: deps
	npx vitest run --project integration

## bench: start private etcd and RabbitMQ, run every benchmark, print the report (test/bench/results/)
bench: deps build
	node --import tsx test/bench/run.ts $(BENCH)

## bench-doc: write docs/benchmarks.md from the last `make bench` run
bench-doc: node_modules/.installed
	node --import tsx test/bench/report.ts

## chaos: the long fault suite (private etcd and RabbitMQ, 3 workers, ≥20 kills); CHAOS_TOPOLOGY=ha: three etcd members and three RabbitMQ nodes with the HA faults; CHAOS_KILLS, CHAOS_SECONDS, CHAOS_SEED, … (docs/failure-modes.md); draws test/chaos/results/timeline-<topology>.svg
chaos: deps
	node --import tsx test/chaos/run.ts

## fuzz: the long API fuzz run (≥10,000 generated requests against a single-node daemon; FUZZ_RUNS, FUZZ_SEED; docs/security.md)
fuzz: deps
	node --import tsx test/fuzz/run.ts

## generate: rewrite the generated files (docs/configuration.md, the monitoring manifests, the module table of docs/architecture.md); tests fail when they are stale
generate: node_modules/.installed
	node --import tsx scripts/gen-config-docs.ts
	node --import tsx scripts/gen-monitoring.ts
	node --import tsx scripts/gen-architecture-docs.ts

## image: build the container image (needs a Docker engine; nothing in `make test` does)
IMAGE ?= hearth:$(shell node -p "require('./package.json').version")
image:
	@docker info >/dev/null 2>&1 || { echo "make image needs a running Docker engine (docker info failed)" >&2; exit 1; }
	docker build -f deploy/Dockerfile -t $(IMAGE) --build-arg REVISION=$$(git rev-parse --short HEAD 2>/dev/null || echo unknown) .

clean:
	rm -rf dist coverage $(VITEST_REPORT)
