#!/bin/sh
# In the guest (cwd: the checkout): one set of tests against the host's
# build, JUnit XML to /dev/ttyS1 for the host. `short` is the subset of
# make check (a few minutes under emulation), `full` that of make check-v2.
set -u
integration=tests/integration
case "${1:-}" in
short)
    tests="tests/guest/test_v2.py $integration/test_deny.py::test_no_network
        $integration/test_deny.py::test_no_privilege $integration/test_limits.py::test_memory_limit
        $integration/test_cleanup.py::test_nothing_left_after_fork_bomb"
    ;;
full)
    tests="tests/guest/test_v2.py $integration/test_cli.py $integration/test_deny.py $integration/test_allow.py
        $integration/test_limits.py $integration/test_sabotage.py $integration/test_cleanup.py
        $integration/test_results.py $integration/test_zygote_start.py $integration/test_deadlines.py
        $(ls $integration/test_daemon_*.py)"
    ;;
*)
    echo "usage: run-tests.sh short|full" >&2
    exit 2
    ;;
esac
# shellcheck disable=SC2086
# Timing slack in the tests (not the limits they check) is scaled for TCG.
# -v and faulthandler_timeout: a hang shows which test and where.
PYRUNNER_TEST_SLOWDOWN=4 /usr/bin/python3.11 -m pytest -v -o faulthandler_timeout=600 -p no:cacheprovider --junitxml=/tmp/guest.xml $tests
rc=$?
cat /tmp/guest.xml > /dev/ttyS1
exit $rc
