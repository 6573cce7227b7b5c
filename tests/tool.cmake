# SPDX-License-Identifier: MIT
# The memspace tool and the topology library: oracle import, unit tests,
# golden files of every command, bad-input tests.
ms_test(tool_oracle LABELS oracle LIBS ms_testutil
        ARGS ${MEMSPACE_ORACLE_DIR})
