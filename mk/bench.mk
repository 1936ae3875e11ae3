# mk/bench.mk - `make bench`: the benchmark (bench/run.sh, docs/performance.md).
# BENCH_QUICK=1 make bench   a three-minute smoke run (one short round).

BENCH_TOOL := $(BUILD)/bench/statement-sql

$(BUILD)/bench:
	@mkdir -p $@

# Prints the SQL of the service's own prepared statements for pgbench.
$(BENCH_TOOL): bench/statement_sql.c $(BUILD)/libmailsrv.a | $(BUILD)/bench
	@echo "  LD      $@"
	@$(CC) $(ALL_CFLAGS) $(HARDEN_LDFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

bench: deps all $(BENCH_TOOL)
	@BENCH_STATEMENT_SQL=$(abspath $(BENCH_TOOL)) bench/run.sh
