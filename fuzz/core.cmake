ms_fuzz(fuzz_render LIBS ms_testutil ms_refmodel)
