# The access path against the reference access splitter (issue 5).
ms_fuzz(fuzz_access LIBS ms_accessref)
