/* SPDX-License-Identifier: MIT */
#pragma once

/* Framing between the engine and a sandbox: a 4-byte big-endian payload
 * length, then that many bytes of UTF-8 JSON. Both directions, one format. */

#include <stddef.h>
#include <stdint.h>

#define FRAME_HEADER_SIZE 4u
#define FRAME_MAX_HARD (64u << 20)

void frame_put_header(uint8_t out[FRAME_HEADER_SIZE], uint32_t payload_len);

/* Looks at buffered bytes. Returns 1 and sets *payload_len when a whole frame
 * is present, 0 when more bytes are needed, -EMSGSIZE when the announced
 * length exceeds max_payload. */
int frame_peek(const uint8_t *buf, size_t avail, size_t max_payload, size_t *payload_len);
