#pragma once
// The umbrella header: everything a sorix program uses.
#include "sorix/autograd/engine.hpp"
#include "sorix/autograd/grad_mode.hpp"
#include "sorix/autograd/ops.hpp"
#include "sorix/core/dtype.hpp"
#include "sorix/core/generator.hpp"
#include "sorix/core/random.hpp"
#include "sorix/core/tensor.hpp"
#include "sorix/parallel/parallel.hpp"
#include "sorix/core/state_dict.hpp"
#include "sorix/nn/containers.hpp"
#include "sorix/nn/module.hpp"
#include "sorix/nn/dropout.hpp"
