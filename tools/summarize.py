#!/usr/bin/python3
"""Prints every unit and integration test result, then `N passed, N failed`.
Exits non-zero when anything failed or when no test ran at all."""
import json
import sys
import xml.etree.ElementTree as ET

passed = failed = skipped = 0
meson_log, junit = sys.argv[1], sys.argv[2]

try:
    with open(meson_log) as f:
        for line in f:
            t = json.loads(line)
            # TAP subtests are in stdout; count each "ok"/"not ok" line.
            sub = [l for l in (t.get("stdout") or "").splitlines()
                   if l.startswith("ok ") or l.startswith("not ok ")]
            if sub:
                for l in sub:
                    if l.startswith("not ok") and "# SKIP" not in l:
                        failed += 1
                        print("FAIL unit", t["name"], l)
                    elif "# SKIP" in l:
                        skipped += 1
                    else:
                        passed += 1
            elif t.get("result") in ("OK", "EXPECTEDFAIL"):
                passed += 1
            elif t.get("result") == "SKIP":
                skipped += 1
            else:
                failed += 1
                print("FAIL unit", t["name"], t.get("result"))
except FileNotFoundError:
    print("missing", meson_log)
    failed += 1

try:
    root = ET.parse(junit).getroot()
    for case in root.iter("testcase"):
        name = "%s::%s" % (case.get("classname"), case.get("name"))
        if case.find("failure") is not None or case.find("error") is not None:
            failed += 1
            print("FAIL integration", name)
        elif case.find("skipped") is not None:
            skipped += 1
            print("SKIP integration", name)
        else:
            passed += 1
except (FileNotFoundError, ET.ParseError):
    print("missing", junit)
    failed += 1

if passed + failed == 0:
    failed = 1
line = "%d passed, %d failed" % (passed, failed)
if skipped:
    line += ", %d skipped" % skipped
print(line)
sys.exit(1 if failed else 0)
