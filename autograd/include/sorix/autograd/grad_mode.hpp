#pragma once
// Grad mode (NoGradGuard, AutoGradMode) lives in core, as PyTorch's GradMode lives in c10: the
// tensor's in-place checks need it and core must not include autograd. Kept here for user code.
#include "sorix/core/grad_mode.hpp"
