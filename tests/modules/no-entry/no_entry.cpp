// A plain shared library with an exported function but no keel_module_entry: the host must
// refuse it (after verifying its signature) instead of crashing or guessing.
#include <keel/abi.h>

extern "C" KEEL_EXPORT int keel_test_not_a_module(int x) { return x + 1; }
