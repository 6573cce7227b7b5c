# The access path against a raw pointer, a direct call and Unicorn 2.
# Unicorn (Debian libunicorn-dev) is linked into this benchmark only; without
# it the benchmark still runs and says so.
pkg_check_modules(UNICORN QUIET IMPORTED_TARGET unicorn)
if(UNICORN_FOUND)
    ms_bench(bench_access LIBS PkgConfig::UNICORN SMOKE_ARGS --smoke)
    target_compile_definitions(bench_access PRIVATE MS_BENCH_HAVE_UNICORN=1)
else()
    ms_bench(bench_access SMOKE_ARGS --smoke)
endif()
