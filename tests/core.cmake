# Core: regions, tree, rendering, transactions, mtree text, the oracle.
ms_test(test_region LIBS ms_testutil)
ms_test(test_tree LIBS ms_testutil)
ms_test(test_render LIBS ms_testutil)
ms_test(test_mtree LABELS "unit;golden" LIBS ms_testutil)
target_compile_definitions(test_mtree PRIVATE
    GOLDEN_DIR="${CMAKE_SOURCE_DIR}/tests/golden")
ms_test(test_render_random LIBS ms_refmodel)
ms_test(test_oracle LABELS oracle LIBS ms_testutil
        ARGS ${MEMSPACE_ORACLE_DIR})
# Install rules, pkg-config file and exported-symbol list.
if(NOT MEMSPACE_SANITIZE)
    add_test(NAME install-check
             COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/install_check.sh
                     ${CMAKE_BINARY_DIR} ${CMAKE_SOURCE_DIR})
    set_tests_properties(install-check PROPERTIES LABELS unit)
endif()
