#include "harness.h"
int main(void) { return ms_test_summary("test_mtree"); }
