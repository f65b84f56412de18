/* SPDX-License-Identifier: MIT */
#include <errno.h>

#include "frame.h"

void frame_put_header(uint8_t out[FRAME_HEADER_SIZE], uint32_t payload_len)
{
        out[0] = (uint8_t)(payload_len >> 24);
        out[1] = (uint8_t)(payload_len >> 16);
        out[2] = (uint8_t)(payload_len >> 8);
        out[3] = (uint8_t)payload_len;
}

int frame_peek(const uint8_t *buf, size_t avail, size_t max_payload, size_t *payload_len)
{
        if (avail < FRAME_HEADER_SIZE)
                return 0;
        size_t len = (size_t)buf[0] << 24 | (size_t)buf[1] << 16 | (size_t)buf[2] << 8 | buf[3];
        if (len > max_payload || len > FRAME_MAX_HARD)
                return -EMSGSIZE;
        if (avail - FRAME_HEADER_SIZE < len)
                return 0;
        *payload_len = len;
        return 1;
}
