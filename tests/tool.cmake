# SPDX-License-Identifier: MIT
# The memspace tool and the topology library: oracle import, unit tests,
# golden files of every command, bad-input tests.
ms_test(tool_oracle LABELS oracle LIBS ms_testutil
        ARGS ${MEMSPACE_ORACLE_DIR})
ms_test(tool_cli LABELS "unit;golden" LIBS ms_testutil
        ARGS $<TARGET_FILE:memspace_tool>
             ${CMAKE_CURRENT_SOURCE_DIR}/data/tool
             ${CMAKE_CURRENT_SOURCE_DIR}/golden/tool)
ms_test(tool_topology LIBS ms_testutil
        ARGS ${CMAKE_CURRENT_SOURCE_DIR}/data/tool)
