# KVM backend: the planner against a kernel-rules model, the listener and
# slot table through a fake ioctl seam, and real /dev/kvm guests (skipped,
# exit 77, where /dev/kvm is missing).
add_library(ms_kvm_testlib STATIC kvm_model.c kvm_plancheck.c)
target_link_libraries(ms_kvm_testlib PUBLIC memspace_static)
target_include_directories(ms_kvm_testlib PUBLIC
    ${CMAKE_CURRENT_SOURCE_DIR} ${CMAKE_SOURCE_DIR}/src)

ms_test(test_kvm_plan LIBS ms_kvm_testlib)

add_library(ms_kvm_board STATIC kvm_board.c)
target_link_libraries(ms_kvm_board PUBLIC memspace_static)
target_include_directories(ms_kvm_board PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})

ms_test(test_kvm_fake LIBS ms_kvm_testlib ms_kvm_board ms_testutil)
ms_test(test_kvm_route LIBS ms_kvm_testlib ms_testutil)
ms_test(test_kvm_oracle LABELS "oracle;golden" LIBS ms_kvm_testlib
        ms_testutil ARGS ${MEMSPACE_ORACLE_DIR})

# Real /dev/kvm: tiny real-mode guests assembled with GNU as.
if(CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
    set_source_files_properties(kvm_guest.S PROPERTIES COMPILE_OPTIONS
        "$<$<C_COMPILER_ID:Clang>:-fno-integrated-as>")
    ms_test(test_kvm_real SOURCES test_kvm_real.c kvm_guest.S
            LABELS "kvm;thread" LIBS ms_testutil Threads::Threads)
endif()
