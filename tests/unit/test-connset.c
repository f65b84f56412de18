/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "connset.h"

static void *ptr(uintptr_t i)
{
        return (void *)(i * 16 + 4096);
}

static void test_cap_is_enforced(void **state)
{
        ConnSet s;
        Conn *c[5], *extra;
        assert_int_equal(connset_init(&s, 4), 0);
        for (int i = 0; i < 4; i++) {
                assert_false(connset_full(&s));
                assert_int_equal(connset_add(&s, ptr(i), &c[i]), 0);
        }
        assert_true(connset_full(&s));
        assert_int_equal(connset_add(&s, ptr(9), &extra), -ENOSPC);
        /* Pending and adopted count alike. */
        assert_int_equal(connset_adopt(&s, c[0], ptr(100)), 0);
        assert_int_equal(connset_add(&s, ptr(9), &extra), -ENOSPC);
        connset_remove(&s, c[0]);
        assert_false(connset_full(&s));
        assert_int_equal(connset_add(&s, ptr(9), &c[4]), 0);
        assert_true(connset_full(&s));
        connset_done(&s);
        assert_int_equal(connset_init(&s, 0), -EINVAL);
}

static void test_pending_then_adopted(void **state)
{
        ConnSet s;
        Conn *a, *b;
        assert_int_equal(connset_init(&s, 2), 0);
        assert_null(connset_first_pending(&s));
        assert_int_equal(connset_add(&s, ptr(1), &a), 0);
        assert_int_equal(connset_add(&s, ptr(2), &b), 0);
        assert_ptr_equal(connset_first_pending(&s), a);
        assert_ptr_equal(a->bev, ptr(1));
        assert_int_equal(connset_adopt(&s, a, ptr(50)), 0);
        assert_ptr_equal(connset_first_pending(&s), b);
        assert_ptr_equal(connset_find(&s, ptr(50)), a);
        assert_null(connset_find(&s, ptr(51)));
        assert_null(connset_find(&s, NULL));
        /* The same evcon twice: refused, the entry stays pending. */
        assert_int_equal(connset_adopt(&s, b, ptr(50)), -EEXIST);
        assert_ptr_equal(connset_first_pending(&s), b);
        assert_null(b->evcon);
        connset_remove(&s, b);
        assert_null(connset_first_pending(&s));
        assert_int_equal(s.n, 1);
        connset_done(&s);
}

/* Random adds, adoptions and removals against a plain array, with keys
 * chosen to collide; every lookup agrees and every probe ends. */
static void test_against_reference(void **state)
{
        enum { CAP = 64, KEYS = 512 };
        ConnSet s;
        Conn *ref[KEYS] = { 0 };
        uint64_t x = 12345;
        assert_int_equal(connset_init(&s, CAP), 0);
        for (int step = 0; step < 200000; step++) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                /* Multiples of the table size land on few home slots. */
                unsigned k = (unsigned)(x % KEYS);
                void *key = (void *)(uintptr_t)((k % 8) * (s.n_slots << 4) + (k / 8) * 16 + 16);
                if (ref[k]) {
                        assert_ptr_equal(connset_find(&s, key), ref[k]);
                        connset_remove(&s, ref[k]);
                        ref[k] = NULL;
                } else {
                        Conn *c;
                        int r = connset_add(&s, NULL, &c);
                        if (r == -ENOSPC) {
                                assert_int_equal(s.n, CAP);
                                continue;
                        }
                        assert_int_equal(r, 0);
                        assert_int_equal(connset_adopt(&s, c, key), 0);
                        ref[k] = c;
                }
                if (step % 997 == 0)
                        for (unsigned j = 0; j < KEYS; j++) {
                                void *kj = (void *)(uintptr_t)((j % 8) * (s.n_slots << 4) + (j / 8) * 16 + 16);
                                assert_ptr_equal(connset_find(&s, kj), ref[j]);
                        }
        }
        size_t live = 0;
        for (unsigned j = 0; j < KEYS; j++)
                live += ref[j] != NULL;
        assert_int_equal(s.n, live);
        connset_done(&s);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_cap_is_enforced),
                cmocka_unit_test(test_pending_then_adopted),
                cmocka_unit_test(test_against_reference),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
