# Core topology benchmarks: building N regions, commit cost.
ms_bench(bench_topology SMOKE_ARGS 1000)
