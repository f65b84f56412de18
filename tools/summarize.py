#!/usr/bin/python3.11
"""Prints every failed, skipped or missing test of make check's suites, and
every sanitizer report, then one final line `N passed, N failed`.

Usage: tools/summarize.py [--meson LABEL=testlog.json] [--junit LABEL=pytest.xml]...
                          [--sanitizer-logs DIR]...

A result file that is missing or unreadable (its suite did not run) and
every file in a sanitizer log directory count as one failure each. Exits
non-zero when anything failed or when no test ran at all."""
import argparse
import json
import os
import sys
import xml.etree.ElementTree as ET

REPORT_LINES = 12


class Tally:
    def __init__(self):
        self.passed = self.failed = self.skipped = 0

    def fail(self, label, what, detail=""):
        self.failed += 1
        print("FAIL %s %s%s" % (label, what, (" " + detail) if detail else ""))

    def skip(self, label, what):
        self.skipped += 1
        print("SKIP %s %s" % (label, what))


def read_meson(t, label, path):
    with open(path) as f:
        for line in f:
            test = json.loads(line)
            # TAP subtests are in stdout; count each "ok"/"not ok" line once
            # (a forked child that crashed may repeat its parent's).
            sub = list(dict.fromkeys(s for s in (test.get("stdout") or "").splitlines()
                                     if s.startswith("ok ") or s.startswith("not ok ")))
            for s in sub:
                if "# SKIP" in s:
                    t.skip(label, "%s %s" % (test["name"], s))
                elif s.startswith("not ok"):
                    t.fail(label, test["name"], s)
                else:
                    t.passed += 1
            # A crash after its last subtest still fails the program.
            if test.get("result") in ("OK", "EXPECTEDFAIL"):
                t.passed += not sub
            elif test.get("result") == "SKIP":
                t.skip(label, test["name"])
            elif not sub or all(s.startswith("ok ") for s in sub):
                t.fail(label, test["name"], str(test.get("result")))


def read_junit(t, label, path):
    root = ET.parse(path).getroot()
    for case in root.iter("testcase"):
        name = "%s::%s" % (case.get("classname"), case.get("name"))
        if case.find("failure") is not None or case.find("error") is not None:
            t.fail(label, name)
        elif case.find("skipped") is not None:
            t.skip(label, name)
        else:
            t.passed += 1


def read_sanitizer_logs(t, path):
    try:
        names = sorted(os.listdir(path))
    except FileNotFoundError:
        t.fail("sanitizer", path, "(missing: the sanitized run did not start)")
        return
    for n in names:
        t.fail("sanitizer", os.path.join(path, n))
        with open(os.path.join(path, n), errors="replace") as f:
            lines = [s.rstrip() for s in f if s.strip() and not s.startswith("=====")]
        for s in lines[:REPORT_LINES]:
            print("    " + s)
        if len(lines) > REPORT_LINES:
            print("    ... (%d more lines)" % (len(lines) - REPORT_LINES))


def labelled(arg):
    label, sep, path = arg.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError("expected LABEL=FILE, got %r" % arg)
    return label, path


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--meson", type=labelled, action="append", default=[])
    ap.add_argument("--junit", type=labelled, action="append", default=[])
    ap.add_argument("--sanitizer-logs", action="append", default=[])
    a = ap.parse_args()

    t = Tally()
    for reader, files in ((read_meson, a.meson), (read_junit, a.junit)):
        for label, path in files:
            try:
                reader(t, label, path)
            except (OSError, ValueError, ET.ParseError) as e:
                t.fail(label, path, "(missing or unreadable: %s)" % e)
    for d in a.sanitizer_logs:
        read_sanitizer_logs(t, d)

    if t.passed + t.failed == 0:
        t.fail("summary", "no test ran")
    line = "%d passed, %d failed" % (t.passed, t.failed)
    if t.skipped:
        line += ", %d skipped" % t.skipped
    print(line)
    return 1 if t.failed else 0


if __name__ == "__main__":
    sys.exit(main())
