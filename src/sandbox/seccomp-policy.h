/* SPDX-License-Identifier: MIT */
#pragma once

#include <linux/filter.h>

typedef enum SeccompPolicyKind {
        SECCOMP_POLICY_USER,         /* the user's code: a broad allowlist */
        SECCOMP_POLICY_INIT,         /* the sandbox's pid 1: wait and exit only */
} SeccompPolicyKind;

/* One policy is up to two stacked filters: an allowlist, and the
 * argument checks for syscalls the allowlist lets through whole (libseccomp
 * cannot say "allow ioctl except these commands" in one filter: an
 * unconditional rule replaces the conditional ones). */
typedef struct SeccompProgram {
        struct sock_fprog filter[2];
        unsigned n;
} SeccompProgram;

/* Compiles a policy to raw BPF once (in the zygote, before imports).
 * The filters are malloc'ed and owned by ret; free with seccomp_program_free. */
int seccomp_policy_build(SeccompPolicyKind kind, SeccompProgram *ret);
void seccomp_program_free(SeccompProgram *p);
/* Sets no_new_privs and installs the prebuilt filters; allocation-free. */
int seccomp_policy_install(const SeccompProgram *p);
