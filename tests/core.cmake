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
