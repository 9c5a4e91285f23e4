// The diag step: task D's health check (dis/diag.hpp). Until that is merged, a plan with a
// diag step is refused when it is read (plan.cpp).
#include "steps.hpp"

#include "dis/error.hpp"

namespace dis::qualify::detail {

void run_diag(const Step&, StepEnv&, StepResult& out) {
    run_case(out, "diag", []() -> nlohmann::json {
        throw Error(ErrorKind::invalid_input, "diag needs lib/diag");
    });
}

} // namespace dis::qualify::detail
