# KVM backend: the planner against a kernel-rules model, the listener and
# slot table through a fake ioctl seam, and real /dev/kvm guests (skipped,
# exit 77, where /dev/kvm is missing).
add_library(ms_kvm_testlib STATIC kvm_model.c kvm_plancheck.c)
target_link_libraries(ms_kvm_testlib PUBLIC memspace_static)
target_include_directories(ms_kvm_testlib PUBLIC
    ${CMAKE_CURRENT_SOURCE_DIR} ${CMAKE_SOURCE_DIR}/src)

ms_test(test_kvm_plan LIBS ms_kvm_testlib)
