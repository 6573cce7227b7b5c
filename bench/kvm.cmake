# KVM backend: memslot ioctls per topology change (fake seam and, where
# /dev/kvm exists, the kernel) and the exit round trip through the vCPU
# helper beside a raw KVM_RUN loop.
if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
    ms_bench(bench_kvm SOURCES bench_kvm.c ${CMAKE_SOURCE_DIR}/tests/kvm_guest.S
             LIBS ms_kvm_testlib ms_kvm_board Threads::Threads
             SMOKE_ARGS 2000)
endif()
