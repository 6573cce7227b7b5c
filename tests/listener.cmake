# Listeners, ioeventfds, dirty logging (the commit contract).
add_library(ms_reclog STATIC reclog.c)
target_link_libraries(ms_reclog PUBLIC ms_testutil)
ms_test(test_listener LIBS ms_reclog)
ms_test(test_ioeventfd LIBS ms_reclog)
ms_test(test_dirty LIBS ms_reclog)
ms_test(test_shadow_random LIBS ms_refmodel)
