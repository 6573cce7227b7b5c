# The access path: read, write and map guest memory (issue 5).
add_library(ms_accessref STATIC access_ref.c)
target_link_libraries(ms_accessref PUBLIC ms_testutil)
ms_test(test_access LIBS ms_testutil)
ms_test(test_access_random LIBS ms_accessref)
ms_test(test_access_threads LABELS "unit;thread" LIBS ms_testutil)
ms_test(test_sheet_threads LABELS "unit;thread" LIBS ms_testutil)
ms_test(test_iommu LIBS ms_testutil)
ms_test(test_iommu_threads LABELS "unit;thread" LIBS ms_testutil)
