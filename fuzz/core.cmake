ms_fuzz(fuzz_render LIBS ms_testutil ms_refmodel)
ms_fuzz(fuzz_shadow LIBS ms_testutil ms_refmodel)
