# mk/sanitize.mk - the AddressSanitizer + UndefinedBehaviorSanitizer build of
# the service and the valgrind run of the unit tests.
#
#   make asan       build/asan/mailsrv: the service with ASan and UBSan, from
#                   its own objects (build/asan/obj), never mixed with
#                   build/obj. `make test` builds it and runs the API suite
#                   and the fault drills against it (tests/run_all.sh), with
#                   every sanitizer report written under the test stack's
#                   log directory and counted as a failure.
#   make valgrind   every unit test binary under valgrind (definite leaks
#                   and memory errors fail); `make test` runs the same.
#
# libfcgi, libpq, libcurl, OpenSSL and yajl are Debian's uninstrumented
# builds: ASan still sees their heap through its malloc, not their stack or
# globals.

ASAN_CC     ?= clang
ASAN_DIR    := $(BUILD)/asan
ASAN_OBJ    := $(SRC:src/%.c=$(ASAN_DIR)/obj/%.o)
ASAN_BIN    := $(ASAN_DIR)/mailsrv
# clang, as for the fuzzers: one runtime for both sanitizers, so UBSan's
# reports honour log_path too (gcc 12's separate libubsan writes them to
# stderr). No _FORTIFY_SOURCE (its checked libc calls hide accesses from
# ASan); otherwise the normal build's warnings, but for clang's
# -Wformat-nonliteral on log.c's vsnprintf of its checked format argument.
# MAILSRV_FAILPOINTS: the fault drills' failpoints (include/failpoint.h),
# in this build only.
ASAN_CFLAGS := -std=c11 -D_GNU_SOURCE -DMAILSRV_FAILPOINTS $(WARN) -Wno-format-nonliteral -O1 -g -fno-omit-frame-pointer \
               -fsanitize=address,undefined -fno-sanitize-recover=undefined \
               -Iinclude -I$(BUILD)/gen -I/usr/include/postgresql -fPIE -pthread
ASAN_LDFLAGS := -fsanitize=address,undefined -pie

.PHONY: asan valgrind

asan: $(ASAN_BIN)

$(ASAN_DIR)/obj:
	@mkdir -p $@

$(ASAN_DIR)/obj/router.o: $(BUILD)/gen/schema_version.h
$(ASAN_DIR)/obj/%.o: src/%.c $(wildcard include/*.h) | $(ASAN_DIR)/obj
	@echo "  CC asan $<"
	@$(ASAN_CC) $(ASAN_CFLAGS) -c -o $@ $<

$(ASAN_BIN): $(ASAN_OBJ)
	@echo "  LD      $@"
	@$(ASAN_CC) $(ASAN_LDFLAGS) -o $@ $^ $(LIBS)

# `make test` runs the API suite and the drills against this build.
test: $(ASAN_BIN)

VALGRIND := valgrind -q --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
            --show-leak-kinds=definite --track-origins=yes --trace-children=no \
            --child-silent-after-fork=yes

valgrind: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== valgrind $$t"; $(VALGRIND) $$t; done
