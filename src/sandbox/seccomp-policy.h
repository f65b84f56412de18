/* SPDX-License-Identifier: MIT */
#pragma once

#include <linux/filter.h>

typedef enum SeccompPolicyKind {
        SECCOMP_POLICY_USER,         /* the user's code: a broad allowlist */
        SECCOMP_POLICY_INIT,         /* the sandbox's pid 1: wait and exit only */
} SeccompPolicyKind;

/* Compiles a policy to raw BPF once (in the zygote, before imports).
 * ret->filter is malloc'ed and owned by the caller. */
int seccomp_policy_build(SeccompPolicyKind kind, struct sock_fprog *ret);
/* Sets no_new_privs and installs a prebuilt filter; allocation-free. */
int seccomp_policy_install(const struct sock_fprog *prog);
