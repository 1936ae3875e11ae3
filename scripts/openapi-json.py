#!/usr/bin/python3
"""openapi-json.py - the JSON form of openapi/openapi.yaml, made at build time
(scripts/build-docs.sh), so the document is written once.

    scripts/openapi-json.py openapi/openapi.yaml OUT.json

The YAML is read the way OpenAPI 3.1 reads it (YAML 1.2's JSON schema): a
date or timestamp stays a string (PyYAML, a YAML 1.1 reader, would make it a
datetime, which JSON has not), and a key that appears twice in one mapping
is an error instead of the last one silently winning. The output is written
whole (a temporary file, then renamed), UTF-8, keys in the YAML's order.
"""

import json
import os
import sys

import yaml


class Loader(yaml.SafeLoader):
    """SafeLoader without the timestamp type, refusing duplicate keys."""


Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def construct_mapping(loader, node, deep=False):
    loader.flatten_mapping(node)
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, "duplicate key %r" % (key,), key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping_plain(node, deep=deep)


Loader.construct_mapping_plain = yaml.SafeLoader.construct_mapping
Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)


def load(path):
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=Loader)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: openapi-json.py OPENAPI.yaml OUT.json")
    src, out = sys.argv[1], sys.argv[2]
    try:
        doc = load(src)
    except (OSError, yaml.YAMLError) as e:
        sys.exit("openapi-json: could not read %s: %s" % (src, e))
    if not isinstance(doc, dict) or "openapi" not in doc:
        sys.exit("openapi-json: %s is not an OpenAPI document" % src)
    try:
        text = json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    except (TypeError, ValueError) as e:
        sys.exit("openapi-json: %s holds a value JSON cannot: %s" % (src, e))
    tmp = out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, out)


if __name__ == "__main__":
    main()
