/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>

/* The gist of an error text, one line in out: its first line, or for one
 * holding a Python traceback what comes before it and its last line (the
 * exception). */
void error_gist(const char *message, char *out, size_t size);
