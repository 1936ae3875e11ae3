# Makefile - build, run and test the mail server configuration service.
# `make run` and `make test` install what is missing (scripts/install-deps.sh).

CC      ?= cc
CFLAGS  ?= -O2 -g
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wformat=2 -Wno-unused-parameter -Wvla -Wpointer-arith
# Hardening as Debian builds its packages (dpkg-buildflags with
# hardening=+all): stack protector, fortified libc calls (they need -O1 or
# more), stack clash protection, control-flow protection (CET on x86), a
# position-independent executable, read-only relocations bound at start.
# tests/hardening_check.sh checks the built binary in `make test`.
HARDEN_CFLAGS  ?= -fstack-protector-strong -D_FORTIFY_SOURCE=2 -fstack-clash-protection \
                  -fcf-protection -fPIE
HARDEN_LDFLAGS ?= -pie -Wl,-z,relro -Wl,-z,now
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) $(CFLAGS) -Iinclude -I/usr/include/postgresql \
           $(HARDEN_CFLAGS) -pthread
LDFLAGS ?=
LIBS    := -lfcgi -lpq -lyajl -lcurl -lssl -lcrypto -pthread

BUILD   ?= build
SRC     := $(wildcard src/*.c)
OBJ     := $(SRC:src/%.c=$(BUILD)/obj/%.o)
LIBOBJ  := $(filter-out $(BUILD)/obj/main.o,$(OBJ))
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
# The schema version this build expects: the newest sql/NNN_*.sql, which
# /readyz compares with the newest migration recorded in the database.
SCHEMA_VERSION := $(lastword $(sort $(notdir $(wildcard sql/[0-9][0-9][0-9]_*.sql))))
ALL_CFLAGS += -I$(BUILD)/gen

.PHONY: all deps unit token run start stop test bench fuzz clean format format-check
all: $(BUILD)/mailsrv $(BUILD)/mailsrv-tool

deps:
	@scripts/install-deps.sh

# Objects depend on this file too: a change of flags rebuilds them.
$(BUILD)/obj/%.o: src/%.c $(wildcard include/*.h) Makefile | $(BUILD)/obj
	@echo "  CC      $<"
	@$(CC) $(ALL_CFLAGS) -c -o $@ $<

# Written only when it changes, so a new migration rebuilds router.c.
$(BUILD)/gen/schema_version.h: FORCE | $(BUILD)/gen
	@printf '#define MAILSRV_SCHEMA_VERSION "%s"\n' '$(SCHEMA_VERSION)' > $@.tmp
	@cmp -s $@.tmp $@ && rm -f $@.tmp || mv -f $@.tmp $@
$(BUILD)/obj/router.o: $(BUILD)/gen/schema_version.h
.PHONY: FORCE
FORCE:

$(BUILD)/obj $(BUILD)/tests $(BUILD)/gen:
	@mkdir -p $@

# Made afresh: `ar r` into an old archive would keep the objects of
# source files that were renamed or removed since.
$(BUILD)/libmailsrv.a: $(LIBOBJ)
	@rm -f $@
	@ar rcs $@ $^

$(BUILD)/mailsrv: $(BUILD)/obj/main.o $(BUILD)/libmailsrv.a
	@echo "  LD      $@"
	@$(CC) $(HARDEN_LDFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/mailsrv-tool: tools/mailsrv_tool.c $(BUILD)/libmailsrv.a
	@echo "  LD      $@"
	@$(CC) $(ALL_CFLAGS) $(HARDEN_LDFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libmailsrv.a | $(BUILD)/tests
	@echo "  LD      $@"
	@$(CC) $(ALL_CFLAGS) -Wno-missing-prototypes $(HARDEN_LDFLAGS) $(LDFLAGS) -o $@ $^ -lcmocka $(LIBS)

# Unit tests alone (cmocka); `make test` runs them with everything else.
unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

clean:
	rm -rf $(BUILD)

# Formatting is clang-format's job (.clang-format); `make test` runs the check.
FORMAT_SRC = $(wildcard src/*.c include/*.h tools/*.c tests/unit/*.c tests/fuzz/*.c bench/*.c)
format:
	@clang-format -i $(FORMAT_SRC)

format-check:
	@clang-format --dry-run -Werror $(FORMAT_SRC)

# ---- the local stack (scripts/stack.sh): PostgreSQL under var/, the worker
# pool and nginx on 127.0.0.1:8080 ----
run: deps all
	@scripts/stack.sh run

start: deps all
	@scripts/stack.sh start

stop:
	@scripts/stack.sh stop

# make -s token SUB=alice ROLES=administrator  (last line: the token)
SUB   ?= admin
ROLES ?= administrator
token: deps $(BUILD)/mailsrv-tool
	@scripts/stack.sh keys >/dev/null
	@eval "$$(scripts/stack.sh env)" && \
	  $(BUILD)/mailsrv-tool token --sub "$(SUB)" --roles "$(ROLES)"

# Every suite (unit, OpenAPI lint, API, drills and two hosts against the real
# stack on its own ports, brief fuzzing); the last line totals them.
test: deps all $(UNIT_BIN)
	@tests/run_all.sh

fuzz:
	@tests/fuzz/run_brief.sh long

# Targets kept in their own files (bench, sanitizers, soak).
-include mk/*.mk
