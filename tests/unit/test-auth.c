/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "auth.h"

static KeyList kl;

static void test_keys_add_trims_and_skips(void **state)
{
        memset(&kl, 0, sizeof(kl));
        assert_int_equal(keys_add(&kl, " k1 ,k2,, #comment,\tk3\t", ","), 0);
        assert_int_equal(kl.n, 3);
        assert_string_equal(kl.keys[0], "k1");
        assert_string_equal(kl.keys[1], "k2");
        assert_string_equal(kl.keys[2], "k3");
        assert_int_equal(keys_add(&kl, "", ","), 0);
        assert_int_equal(kl.n, 3);
}

static void test_keys_add_bounds(void **state)
{
        char big[KEY_MAX_LEN + 1];
        memset(&kl, 0, sizeof(kl));
        memset(big, 'x', sizeof(big) - 1);
        big[KEY_MAX_LEN] = '\0';
        assert_int_equal(keys_add(&kl, big, ","), -E2BIG);
        big[KEY_MAX_LEN - 1] = '\0';
        assert_int_equal(keys_add(&kl, big, ","), 0);
        for (int i = 1; i < MAX_KEYS; i++)
                assert_int_equal(keys_add(&kl, "k", ","), 0);
        assert_int_equal(kl.n, MAX_KEYS);
        assert_int_equal(keys_add(&kl, "one-too-many", ","), -ENOSPC);
}

static void test_key_equal(void **state)
{
        assert_true(key_equal("secret", "secret"));
        assert_false(key_equal("secret", "secreT"));
        assert_false(key_equal("secret", "secret2"));
        assert_false(key_equal("secret2", "secret"));
        assert_false(key_equal("", "x"));
        assert_true(key_equal("", ""));
}

static void test_key_check(void **state)
{
        memset(&kl, 0, sizeof(kl));
        assert_int_equal(keys_add(&kl, "alpha,beta", ","), 0);
        assert_string_equal(key_check(&kl, "Bearer alpha", NULL), "alpha");
        assert_string_equal(key_check(&kl, "bearer beta", NULL), "beta");
        assert_string_equal(key_check(&kl, NULL, "beta"), "beta");
        /* Bearer wins when both are sent. */
        assert_null(key_check(&kl, "Bearer wrong", "alpha"));
        /* Not a Bearer header: the other header counts. */
        assert_string_equal(key_check(&kl, "Basic abc", "alpha"), "alpha");
        assert_null(key_check(&kl, NULL, NULL));
        assert_null(key_check(&kl, "Bearer ", NULL));
        assert_null(key_check(&kl, "Bearer alph", NULL));
}

static void test_loopback(void **state)
{
        struct sockaddr_in a = { .sin_family = AF_INET };
        struct sockaddr_in6 b = { .sin6_family = AF_INET6 };
        inet_pton(AF_INET, "127.3.2.1", &a.sin_addr);
        assert_true(sockaddr_is_loopback((struct sockaddr *)&a));
        inet_pton(AF_INET, "10.0.0.1", &a.sin_addr);
        assert_false(sockaddr_is_loopback((struct sockaddr *)&a));
        inet_pton(AF_INET6, "::1", &b.sin6_addr);
        assert_true(sockaddr_is_loopback((struct sockaddr *)&b));
        inet_pton(AF_INET6, "::ffff:127.0.0.1", &b.sin6_addr);
        assert_true(sockaddr_is_loopback((struct sockaddr *)&b));
        inet_pton(AF_INET6, "::ffff:10.0.0.1", &b.sin6_addr);
        assert_false(sockaddr_is_loopback((struct sockaddr *)&b));
        inet_pton(AF_INET6, "2001:db8::1", &b.sin6_addr);
        assert_false(sockaddr_is_loopback((struct sockaddr *)&b));
        assert_false(sockaddr_is_loopback(NULL));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_keys_add_trims_and_skips),
                cmocka_unit_test(test_keys_add_bounds),
                cmocka_unit_test(test_key_equal),
                cmocka_unit_test(test_key_check),
                cmocka_unit_test(test_loopback),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
