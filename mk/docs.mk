# mk/docs.mk - the API's documentation as static files, and the browser
# driver of its test.
#
#   make docs        build/api-docs: the OpenAPI document in YAML and JSON and
#                    the Swagger UI page (scripts/build-docs.sh); nginx serves
#                    it at /api/v1/openapi.{yaml,json} and /api/docs/.
#                    `make run`, `make start` and `make test` build it.
#   make test-tools  tests/browser/node_modules: puppeteer-core, pinned in
#                    tests/browser/package-lock.json, which drives Debian's
#                    chromium in tests/api/test_api_docs.py. `make test`
#                    installs it.

DOCS_DIR := $(BUILD)/api-docs

.PHONY: docs test-tools
docs: deps
	@scripts/build-docs.sh $(DOCS_DIR)

test-tools: deps
	@scripts/npm-ci.sh tests/browser

# Every target that starts a stack serves the documentation page.
run start bench soak: docs
test: docs test-tools
