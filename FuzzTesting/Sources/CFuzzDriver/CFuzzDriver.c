// The declaration in include/CFuzzDriver.h is all there is; libFuzzer defines the function.
#include "CFuzzDriver.h"
