/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* The gist of an error text, one line in out: its first line, or for one
 * holding a Python traceback what comes before it and its last line (the
 * exception). */
void error_gist(const char *message, char *out, size_t size);

/* Length of the valid UTF-8 sequence at s (left bytes there), or 0 if
 * invalid: overlong forms, surrogates and code points past U+10FFFF are. */
size_t utf8_seq(const unsigned char *s, size_t left);
/* Valid UTF-8 without NUL. */
bool utf8_valid(const char *s, size_t len);
/* Copies at most len bytes of s into a fresh NUL-terminated string with
 * every invalid UTF-8 sequence replaced by U+FFFD. */
char *utf8_sanitize(const char *s, size_t len, size_t *ret_len);
/* len, or less by a UTF-8 character that is cut short at the end (its
 * first bytes, which the next piece of a stream may complete). */
size_t utf8_cut(const char *s, size_t len);

/* The size of what base64 text s[0..len) decodes to (RFC 4648, padded,
 * no line breaks), or -EBADMSG. */
long long base64_decoded_size(const char *s, size_t len);
/* A path below a working directory: relative, components of 1..255 bytes
 * that are not "." or "..", no empty ones, no NUL, at most 4095 bytes. */
bool rel_path_ok(const char *s, size_t len);
