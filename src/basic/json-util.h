/* SPDX-License-Identifier: MIT */
#pragma once

/* JSON text with every real number in its shortest form that reads back
 * as the same double (jansson prints 17 digits: 0.0035181879999999998). */

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

/* The shortest decimal form of a finite x that strtod reads back as x,
 * laid out as Python's repr() does (fixed for exponents -4..15, else
 * 1.5e-07 as 1.5e-7), always with a '.' or an 'e' so that it stays a real.
 * Returns its length, or -EINVAL (not finite) / -ENOBUFS. */
int json_format_real(double x, char *buf, size_t size);
/* json_dumps(json, flags) with json_format_real() for every real; strings
 * and integers are unchanged. JSON_REAL_PRECISION in flags is ignored.
 * NULL on error, as json_dumps. */
char *json_dumps_shortest(const json_t *json, size_t flags);
/* The same, written to f: 0 or -1, as json_dumpf. */
int json_dumpf_shortest(const json_t *json, FILE *f, size_t flags);

/* Bounds for json_check(). */
typedef struct JsonLimits {
        unsigned max_depth;          /* containers nested in one another, <= 4096 */
        size_t max_containers;       /* objects and arrays */
        size_t max_values;           /* every value, containers included */
} JsonLimits;

/* Checks that s[0..len) is one JSON text as RFC 8259 says (valid UTF-8,
 * escapes with paired surrogates, no NUL), within lim, without building
 * anything: the cost of untrusted JSON is known before anyone parses it.
 * Returns 0, -EBADMSG (not JSON), -ELOOP (too deep) or -E2BIG (too many
 * values). */
int json_check(const char *s, size_t len, const JsonLimits *lim);
