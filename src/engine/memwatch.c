/* SPDX-License-Identifier: MIT */
/* The memory watch, for hosts where no memory cgroup can be had. */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine-internal.h"
#include "fd-util.h"
#include "proc-util.h"

/* Private memory of pid and its descendants: the pages they share with
 * the zygote are not theirs. */
static uint64_t tree_rss(pid_t pid, int depth)
{
        char path[96], buf[4096];
        uint64_t total = 0;
        snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", pid);
        if (file_read_str(AT_FDCWD, path, buf, sizeof(buf)) > 0)
                for (char *p = buf; (p = strstr(p, "Private_")); p++) {
                        uint64_t kb = 0;
                        if (sscanf(p, "Private_%*[a-zA-Z]: %" SCNu64, &kb) == 1)
                                total += kb << 10;
                }
        snprintf(path, sizeof(path), "/proc/%d/task/%d/children", pid, pid);
        pid_t child;
        if (depth < 16 && file_read_str(AT_FDCWD, path, buf, sizeof(buf)) > 0)
                for (const char *p = buf; (p = pid_list_next(p, &child));)
                        total += tree_rss(child, depth + 1);
        return total;
}

uint64_t memwatch_tree_rss(pid_t pid)
{
        return tree_rss(pid, 0);
}
