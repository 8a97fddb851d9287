#!/usr/bin/env python3
"""The JSON API's answers, as the real formatters print them, against
docs/api.schema.json; and the schema strict enough to notice a change.

Runs SAMPLES_BINARY (tests/unit/api_schema_samples.cc) into a scratch
folder; each file <definition>.<case>.json must validate against
#/$defs/<definition>. Then, so that a passing test means something, every
sample is mutated once per field and once per value: each key renamed (a
field renamed in a formatter) and each value replaced by one of another
JSON type (a field whose type changed). Every mutation must be rejected.

usage: api_schema_check.py SAMPLES_BINARY SCHEMA_JSON
"""
import json
import os
import subprocess
import sys
import tempfile

import jsonschema


def validator(schema, definition):
    sub = {"$schema": schema["$schema"], "$defs": schema["$defs"],
           "$ref": "#/$defs/" + definition}
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(sub)


def paths(value, path=()):
    """Every (path, value) in the instance, containers included."""
    yield path, value
    if isinstance(value, dict):
        for k, v in value.items():
            yield from paths(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from paths(v, path + (i,))


def at(value, path):
    for p in path:
        value = value[p]
    return value


def other_type(value):
    """A value of another JSON type, one no field accepts in its place."""
    if isinstance(value, bool):
        return "true"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return 7
    if value is None:
        return {"bogus": 1}
    if isinstance(value, list):
        return "[]"
    return []


def mutations(sample):
    """Yields (what, sample) with one change made in place; the change is
    undone when the caller asks for the next one."""
    for path, value in list(paths(sample)):
        if isinstance(value, dict):
            for key in list(value):
                v = value.pop(key)
                value[key + "_renamed"] = v
                yield f"rename {'/'.join(map(str, path + (key,)))}", sample
                del value[key + "_renamed"]
                value[key] = v
        if path:
            parent = at(sample, path[:-1])
            parent[path[-1]] = other_type(value)
            yield f"retype {'/'.join(map(str, path))} ({type(value).__name__})", sample
            parent[path[-1]] = value


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    binary, schema_path = sys.argv[1:]
    with open(schema_path) as f:
        schema = json.load(f)
    failures, checked, rejected = [], 0, 0
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([binary, tmp], check=True)
        names = sorted(os.listdir(tmp))
        if len(names) < 5:
            sys.exit(f"only {names} from {binary}")
        for name in names:
            definition = name.split(".")[0]
            with open(os.path.join(tmp, name), "rb") as f:
                raw = f.read()
            if not raw.endswith(b"\n") or raw.count(b"\n") != 1:
                failures.append(f"{name}: not one line and a newline")
            sample = json.loads(raw)
            v = validator(schema, definition)
            errors = sorted(v.iter_errors(sample), key=lambda e: list(e.path))
            for e in errors:
                failures.append(f"{name}: {'/'.join(map(str, e.path))}: {e.message}")
            checked += 1
            for what, m in mutations(sample):
                if v.is_valid(m):
                    failures.append(f"{name}: the schema accepts it after: {what}")
                else:
                    rejected += 1
    for f in failures:
        print("FAIL: " + f)
    print(f"{checked} samples valid against {os.path.basename(schema_path)}; "
          f"{rejected} mutations (renamed fields, changed types) rejected")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
