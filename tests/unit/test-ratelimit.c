/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <arpa/inet.h>

#include "ratelimit.h"

static RateLimiter rl;

static void test_burst_then_refill(void **state)
{
        double retry = 0;
        ratelimit_init(&rl, 2.0, 3.0);
        for (int i = 0; i < 3; i++)
                assert_true(ratelimit_take(&rl, "key:a", 100.0, &retry));
        assert_false(ratelimit_take(&rl, "key:a", 100.0, &retry));
        /* One token every half second. */
        assert_true(retry > 0.49 && retry <= 0.5);
        assert_false(ratelimit_take(&rl, "key:a", 100.2, &retry));
        assert_true(ratelimit_take(&rl, "key:a", 100.6, &retry));
}

static void test_keys_are_separate(void **state)
{
        ratelimit_init(&rl, 1.0, 1.0);
        assert_true(ratelimit_take(&rl, "key:a", 5.0, NULL));
        assert_false(ratelimit_take(&rl, "key:a", 5.0, NULL));
        assert_true(ratelimit_take(&rl, "key:b", 5.0, NULL));
        assert_true(ratelimit_take(&rl, "ip:127.0.0.1", 5.0, NULL));
}

static void test_capacity_caps_idle_refill(void **state)
{
        ratelimit_init(&rl, 10.0, 2.0);
        assert_true(ratelimit_take(&rl, "k", 0.0, NULL));
        /* A long idle time refills to the burst, not beyond. */
        assert_true(ratelimit_take(&rl, "k", 1000.0, NULL));
        assert_true(ratelimit_take(&rl, "k", 1000.0, NULL));
        assert_false(ratelimit_take(&rl, "k", 1000.0, NULL));
}

static void test_zero_rate_is_off(void **state)
{
        ratelimit_init(&rl, 0.0, 1.0);
        for (int i = 0; i < 1000; i++)
                assert_true(ratelimit_take(&rl, "k", 0.0, NULL));
}

static void test_many_keys_reuse_slots(void **state)
{
        char key[32];
        ratelimit_init(&rl, 1.0, 1.0);
        /* More keys than slots: no crash, and a fresh key always gets its burst. */
        for (int i = 0; i < 5 * RATELIMIT_SLOTS; i++) {
                snprintf(key, sizeof(key), "key:%d", i);
                assert_true(ratelimit_take(&rl, key, (double)i, NULL));
        }
}

static void test_who_is_limited(void **state)
{
        struct sockaddr_in lo = { .sin_family = AF_INET }, far = { .sin_family = AF_INET };
        inet_pton(AF_INET, "127.0.0.1", &lo.sin_addr);
        inet_pton(AF_INET, "203.0.113.7", &far.sin_addr);
        /* Default rate: only remote clients of a server with keys. */
        assert_false(ratelimit_applies(false, false, (struct sockaddr *)&lo));
        assert_false(ratelimit_applies(false, false, (struct sockaddr *)&far));
        assert_false(ratelimit_applies(false, true, (struct sockaddr *)&lo));
        assert_true(ratelimit_applies(false, true, (struct sockaddr *)&far));
        /* No address known: treated as remote. */
        assert_true(ratelimit_applies(false, true, NULL));
        /* An explicit rate: everyone. */
        assert_true(ratelimit_applies(true, false, (struct sockaddr *)&lo));
        assert_true(ratelimit_applies(true, true, (struct sockaddr *)&lo));
        assert_true(ratelimit_applies(true, false, (struct sockaddr *)&far));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_burst_then_refill),
                cmocka_unit_test(test_keys_are_separate),
                cmocka_unit_test(test_capacity_caps_idle_refill),
                cmocka_unit_test(test_zero_rate_is_off),
                cmocka_unit_test(test_many_keys_reuse_slots),
                cmocka_unit_test(test_who_is_limited),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
