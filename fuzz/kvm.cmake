# KVM backend: the memslot planner against the kernel-rules model.
ms_fuzz(fuzz_kvm_plan LIBS ms_kvm_testlib)
