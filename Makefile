# Convenience targets; each calls a script that installs what it needs.
.PHONY: lab test ci check-config fmt bench

lab:            ## the local three-region lab with the dashboard
	scripts/lab.sh

test:           ## every test (installs PostgreSQL, PowerDNS … when missing)
	scripts/test.sh

bench:          ## benchmarks (figures, not assertions) → artifacts/bench/RESULTS.md
	scripts/install-deps.sh
	cargo run --release -p fo-bench --bin fo-bench -- all

ci:             ## what CI runs
	bash .ci/run

check-config:   ## validate the example configuration
	FO_PDNS_API_KEY=example cargo run -q -- check-config regions.toml

fmt:
	cargo fmt
