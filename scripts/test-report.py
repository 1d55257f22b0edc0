#!/usr/bin/env python3
"""The table `make test` ends with: per test binary, its tests, failures, the time its tests
took together (busy) and from its first test's start to its last test's end (span), from
nextest's JUnit report; then the doc tests, the fuzz targets and the total wall time.

usage: test-report.py JUNIT_XML TIMES NEXTEST_STATUS DOC_STATUS [FUZZ_STATUS]
TIMES holds `name<TAB>start<TAB>end` lines (seconds since the epoch) for the nextest run, the
doc tests and, when they ran, the fuzz targets' build (`fuzz-build`) and run (`fuzz-run`). A
missing JUnit report (the build failed) is said, not an error.
"""
import sys
import xml.etree.ElementTree as ET
from datetime import datetime


def seconds(ts):
    """An ISO 8601 timestamp (nextest's, with offset) as seconds since the epoch."""
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def minutes(s):
    return f"{int(s // 60)}:{s % 60:04.1f}"


def main():
    junit, times_path, nextest_status, doc_status = sys.argv[1:5]
    fuzz_status = sys.argv[5] if len(sys.argv) > 5 else "0"
    times = {}
    with open(times_path) as f:
        for line in f:
            name, start, end = line.split("\t")
            times[name] = (float(start), float(end))

    rows = []
    try:
        root = ET.parse(junit).getroot()
    except (OSError, ET.ParseError) as e:
        root = None
        print(f"\nno JUnit report ({e}): the test binaries did not build, or nextest stopped early")
    if root is not None:
        for suite in root.iter("testsuite"):
            cases = suite.findall("testcase")
            busy = sum(float(c.get("time", 0)) for c in cases)
            spans = []
            for c in cases:
                if c.get("timestamp"):
                    start = seconds(c.get("timestamp"))
                    spans.append((start, start + float(c.get("time", 0))))
            span = max(e for _, e in spans) - min(s for s, _ in spans) if spans else busy
            failed = sum(1 for c in cases if c.find("failure") is not None or c.find("error") is not None)
            rows.append((suite.get("name"), len(cases), failed, busy, span))
    rows.sort(key=lambda r: -r[3])

    doc_label = "doc tests (cargo test --doc)"
    fuzz_labels = {
        "fuzz-build": "fuzz targets: build (fuzz/)",
        "fuzz-run": "fuzz targets: run (scripts/fuzz.sh)",
    }
    width = max([len(r[0]) for r in rows] + [len("test binary"), len(doc_label)]
                + [len(label) for label in fuzz_labels.values()])
    print()
    print(f"{'test binary':<{width}}  {'tests':>5}  {'failed':>6}  {'busy':>9}  {'span':>9}")
    for name, n, failed, busy, span in rows:
        print(f"{name:<{width}}  {n:>5}  {failed or '':>6}  {minutes(busy):>9}  {minutes(span):>9}")
    start, end = times["nextest"]
    tests = sum(r[1] for r in rows)
    failed = sum(r[2] for r in rows)
    print(f"{'(all binaries)':<{width}}  {tests:>5}  {failed or '':>6}  {minutes(sum(r[3] for r in rows)):>9}  {minutes(end - start):>9}  wall, build of the test binaries included")
    ds, de = times["doctests"]
    doc = "failed" if doc_status != "0" else ""
    print(f"{doc_label:<{width}}  {'':>5}  {doc:>6}  {'':>9}  {minutes(de - ds):>9}")
    end = de
    for name, label in fuzz_labels.items():
        if name in times:
            fs, fe = times[name]
            end = max(end, fe)
            fuzz = "failed" if fuzz_status != "0" and name == "fuzz-run" else ""
            print(f"{label:<{width}}  {'':>5}  {fuzz:>6}  {'':>9}  {minutes(fe - fs):>9}")
    print(f"{'total':<{width}}  {'':>5}  {'':>6}  {'':>9}  {minutes(end - start):>9}  wall")
    if nextest_status != "0":
        print(f"nextest exited with {nextest_status}")


if __name__ == "__main__":
    main()
