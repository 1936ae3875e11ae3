# mk/soak.mk - `make soak`: a bounded mixed load (SOAK_SECONDS, default 300)
# against a stack of its own (var/soak, nginx 38080, PostgreSQL 55490) while
# the service's resident memory, open descriptors and database connections
# are sampled every 10 s; fails unless they stay flat. See tests/soak.py.
#   make soak SOAK_SECONDS=600

SOAK_SECONDS ?= 300

.PHONY: soak
soak: deps all
	@SOAK_SECONDS=$(SOAK_SECONDS) /usr/bin/python3 tests/soak.py
