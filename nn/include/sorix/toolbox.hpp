#pragma once
// Python sorix's toolbox in C++ (docs/toolbox.md): metrics, preprocessing, model selection and
// clustering, with scikit-learn's definitions.
#include "sorix/toolbox/metrics.hpp"
#include "sorix/toolbox/preprocessing.hpp"
#include "sorix/toolbox/model_selection.hpp"
#include "sorix/toolbox/clustering.hpp"
