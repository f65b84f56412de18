/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <string.h>

#include "text-util.h"

void error_gist(const char *message, char *out, size_t size)
{
        const char *tb = strstr(message, "Traceback (most recent call last)");
        if (!tb) {
                snprintf(out, size, "%.*s", (int)strcspn(message, "\n"), message);
                return;
        }
        const char *end = message + strlen(message);
        while (end > tb && end[-1] == '\n')
                end--;
        const char *last = end;
        while (last > tb && last[-1] != '\n')
                last--;
        snprintf(out, size, "%.*s%.*s", (int)(tb - message), message, (int)(end - last), last);
}
