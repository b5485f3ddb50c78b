#include "scalar_data/orchestration.hpp"

#include <string>

namespace tmr::examples::scalar_data {

void orchestrate(Orchestrator& o, const OrchestrationArgs& args) {
  if (args.tensor_count() != 4 || args.scalar_count() != 1) {
    o.report_fatal(ErrorCode::invalid_args,
                   "scalar_data expects tensors values, count, result, summary and a threshold");
    return;
  }
  const Tensor& values = args.tensor(0);
  const Tensor& count = args.tensor(1);
  const Tensor& result = args.tensor(2);
  const Tensor& summary = args.tensor(3);
  const std::uint32_t n = values.dim(0);
  TMR_SCOPE(o);
  const TaskOutputs selected =
      o.submit_aiv(o.kernel("sd_select_above"), Args()
                                                    .in(values)
                                                    .out_existing(count)
                                                    .out(TensorSpec({n}, DType::f32))
                                                    .scalar(args.scalar<float>(0)));
  if (!selected.valid()) return;

  // Blocks until select_above has run: the number of tasks below is data, not code.
  const auto found = o.get_tensor_data<std::int32_t>(count, {0});
  if (found < 0 || static_cast<std::uint32_t>(found) > n) {
    o.report_fatal(ErrorCode::invalid_args, "scalar_data: count " + std::to_string(found) +
                                                " is outside [0, " + std::to_string(n) + "]");
    return;
  }
  const KernelId square = o.kernel("sd_square");
  for (std::uint32_t i = 0; i < static_cast<std::uint32_t>(found); ++i) {
    o.submit_aiv(square, Args().in(selected[0], {1}, {i}).out_existing(result, {1}, {i}));
  }
  o.submit_aiv(o.kernel("sd_reduce"), Args().in(result).inout(summary));

  // Waits for reduce (it reads and writes summary) before the element is written.
  o.set_tensor_data(summary, {0}, static_cast<float>(found));
  o.submit_aiv(o.kernel("sd_finalize"), Args().inout(summary));
}

}  // namespace tmr::examples::scalar_data
