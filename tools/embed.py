#!/usr/bin/python3
"""Turns a text file into a C header holding it as a string constant."""
import sys

src, dst, name = sys.argv[1], sys.argv[2], sys.argv[3]
data = open(src, "rb").read()
with open(dst, "w") as f:
    f.write("/* generated from %s */\n#pragma once\nstatic const char %s[] =\n" % (src.split("/")[-1], name))
    for line in data.splitlines(True):
        esc = "".join(chr(b) if 32 <= b < 127 and chr(b) not in '"\\?' else "\\%03o" % b for b in line)
        f.write('        "%s"\n' % esc)
    f.write("        ;\n")
