// parallel_for inside the orchestrator: loop stack, learning, start of analysis, statistics.
#include "core/loops/loop_driver.hpp"

#if TMR_WIDE_REPLAY
#include <immintrin.h>
#endif

#include <algorithm>
#include <bit>

namespace tmr::detail {
namespace {

using loops::BufferRef;
using loops::Fallback;

// Iterations compared before a loop gives up finding a template.
constexpr int kMaxLearnAttempts = 4;
// More external producers than this for one access: ask the map per task instead (still exact).
constexpr std::size_t kDenseExternal = 16;
// Loop task tables kept for reuse, and the most iterations a new loop reserves room for.
constexpr std::size_t kSpareTables = 4;
constexpr std::int64_t kReserveIterations = std::int64_t{1} << 20;
// Buffers a loop remembers as read by get_tensor_data with no live writer.
constexpr std::size_t kMaxQuietReads = 8;
// A loop nested in a learning loop analyses itself only when at least this many tasks are left
// to analyse: its set-up (~40K instructions for a small template) and the flush and families it
// leaves for the outer analysis cost about as much as the per-task path of ~50-60 tasks (paged
// attention's MIX block loop, 30 one-task blocks, was 1.9% slower analysed; the 4-task block
// loop, 120 tasks, faster). The outer loop, once analysing, covers its later instances anyway.
constexpr std::int64_t kMinNestedAnalysedTasks = 64;
// Templates kept across runs (LoopDriver::keep_template): at most this many, of at most this many
// accesses in all (a paged attention request template of B256 has ~1,800; ~150 bytes each).
constexpr std::size_t kMaxKept = 16;
constexpr std::size_t kMaxKeptAccesses = std::size_t{1} << 16;

// The bytes [*lo, *hi) of the buffer that `box` (a footprint of a view like `t`, placed with
// `rest`) lies in, the bytes footprint_overlaps tests first.
void footprint_bytes(const Tensor& t, std::uint64_t rest, const loops::LoopTemplate::Box& box,
                     std::uint64_t* lo, std::uint64_t* hi) {
  std::uint64_t first = rest;
  std::uint64_t last = rest;
  for (int r = 0; r < t.ndims(); ++r) {
    const auto stride = static_cast<std::uint64_t>(t.raw_stride(r));
    first += static_cast<std::uint64_t>(box.lo[r]) * stride;
    last += static_cast<std::uint64_t>(box.hi[r] - 1) * stride;
  }
  const std::uint64_t size = t.element_size();
  *lo = first * size;
  *hi = (last + 1) * size;
}

// Whether a map entry may share an element with the box `access` sweeps (`box`), with the
// TensorMap's own rules: other versions always, byte intervals, then boxes in one layout.
bool footprint_overlaps(const Tensor& t, std::uint64_t rest, const loops::LoopTemplate::Box& box,
                        const MapEntry& e) {
  if (t.version() != e.version) return true;
  std::uint64_t lo = 0;
  std::uint64_t hi = 0;
  footprint_bytes(t, rest, box, &lo, &hi);
  if (hi <= e.lo || e.hi <= lo) return false;
  if (!loops::comparable(t, *e.region)) return true;
  const loops::Placement place = loops::placement(*e.region);
  for (int r = 0; r < t.ndims(); ++r) {
    const std::int64_t b0 = place.offset[r];
    const std::int64_t b1 = b0 + e.region->box_extent(r);
    if (box.hi[r] <= b0 || b1 <= box.lo[r]) return false;
  }
  return true;
}

// start_analysis's external producers of template access `a` (to an outer buffer) over the
// analysed range's box: the live map entries it may meet (a read meets only writes; a free read
// every write, whatever its view), into `external`. True when there are more than
// kDenseExternal (the access then looks up per task). Out of line: a tight walk of the entries.
[[gnu::noinline]] bool collect_external(Dependence& dependence, const loops::LoopTemplate& tmpl,
                                        std::uint32_t a, const loops::LoopTemplate::Box& box,
                                        std::vector<MapEntry>* external) {
  const loops::AccessRecord& rec = tmpl.access(a);
  const bool write = loops::is_write(rec.tag);
  const bool free_read = tmpl.free_read(a);
  bool dense = false;
  dependence.for_each_live_entry(rec.buffer.address, rec.buffer.owner, [&](const MapEntry& e) {
    if (dense) return;
    if (!write && e.kind != static_cast<std::uint8_t>(AccessKind::write)) return;
    if (!free_read && !footprint_overlaps(rec.tensor, tmpl.rest(a), box, e)) return;
    if (external->size() >= kDenseExternal) {
      dense = true;
      return;
    }
    external->push_back(e);
  });
  return dense;
}

}  // namespace

LoopDriver::LoopDriver(std::span<Ring* const> rings, Dependence& dependence, bool enabled)
    : rings_(rings),
      dependence_(dependence),
      families_(RetirementView(rings.data(), static_cast<int>(rings.size()))),
      config_enabled_(enabled) {
  dependence_.attach_families(&families_);
}

#if TMR_WIDE_REPLAY
namespace {

using WideWord = std::uint32_t __attribute__((vector_size(32)));

using HalfWord = std::uint32_t __attribute__((vector_size(16)));

// One argument of LoopDriver::exact_wide: moves the image's box-offset lanes (the upper half of
// wide word 1, and unless `narrow` the lower half of wide word 2) and ors the difference of `t`
// into `diff` (the first 96 bytes) and `tail` (its last 16 bytes against the image's last word,
// which holds them; masked to the defined bytes once, after the last argument). The tail in a
// vector too (session 27; before, 8 bytes in a general register: two more registers to save and
// a scalar or-chain, ~8 instructions a 4-argument submit).
// Generic vectors only, inline: compiled for the AVX2 caller.
template <bool narrow>
[[gnu::target("avx2"), gnu::always_inline]] inline void exact_wide_one(
    unsigned char* __restrict image, const void* step0, const void* step1, const Tensor& t,
    std::size_t tail_at, WideWord* diff, HalfWord* tail) {
  using Half = HalfWord;
  const Half zero = {};
  Half s0;
  std::memcpy(&s0, step0, sizeof(Half));
  WideWord img[3];
  std::memcpy(&img[0], image, 32);
  std::memcpy(&img[1], image + 32, 32);
  img[1] += __builtin_shufflevector(zero, s0, 0, 1, 2, 3, 4, 5, 6, 7);
  std::memcpy(image + 32, &img[1], 32);
  std::memcpy(&img[2], image + 64, 32);
  if constexpr (!narrow) {
    Half s1;
    std::memcpy(&s1, step1, sizeof(Half));
    img[2] += __builtin_shufflevector(s1, zero, 0, 1, 2, 3, 4, 5, 6, 7);
    std::memcpy(image + 64, &img[2], 32);
  }
  const auto* const bytes = reinterpret_cast<const unsigned char*>(&t);
  WideWord words[3];
#pragma GCC unroll 4
  for (int w = 0; w < 3; ++w)
    std::memcpy(&words[w], bytes + 32 * w, 32);
  Half last;
  std::memcpy(&last, bytes + sizeof(Tensor) - sizeof(Half), sizeof(Half));
  Half image_last;
  std::memcpy(&image_last, image + tail_at, sizeof(Half));
  *tail |= last ^ image_last;  // masked once, after the last argument
  *diff |= (words[0] ^ img[0]) | (words[1] ^ img[1]) | (words[2] ^ img[2]);
}

}  // namespace

template <bool narrow, int kCount>
[[gnu::always_inline]] inline bool LoopDriver::exact_wide_n(AccessPlan* plans, const Args& args,
                                                            int count) {
  // The image's last word (at 16 * (kWords - 1)) holds the Tensor's last 16 bytes.
  static_assert(kWordAt[kWords - 1] == sizeof(Tensor) - sizeof(HalfWord));
  constexpr std::size_t tail_at = 16 * (kWords - 1);
  WideWord d = {};
  HalfWord tail = {};
  const int n = kCount > 0 ? kCount : count;
#pragma GCC unroll 4
  for (int k = 0; k < n; ++k) {
    AccessPlan& plan = plans[k];
    exact_wide_one<narrow>(reinterpret_cast<unsigned char*>(plan.image), &plan.step[0],
                           &plan.step[1], args.tensor(k), tail_at, &d, &tail);
  }
  // The tail's defined bytes (not the Tensor's trailing padding) joined to the rest: one test.
  constexpr HalfWord kDefined = {defined_lane(0), defined_lane(1), defined_lane(2),
                                 defined_lane(3)};
  const HalfWord zero = {};
  d |= __builtin_shufflevector(tail & kDefined, zero, 0, 1, 2, 3, 4, 5, 6, 7);
  __m256i v;
  std::memcpy(&v, &d, sizeof(v));
  return _mm256_testz_si256(v, v) != 0;
}

template <int kCount>
[[gnu::always_inline]] inline bool LoopDriver::masked_wide_n(AccessPlan* plans, const Args& args,
                                                             int count, Tensor* out,
                                                             std::uint32_t imaged,
                                                             std::uint32_t stepped) {
  static_assert(sizeof(Tensor) == 104 && kWordAt[kWords - 1] == 88 && kStepWord == 3,
                "three 32-byte words and the last 16-byte word cover the Tensor, the box offsets "
                "in words kStepWord and kStepWord + 1 (wide words 1 and 2)");
  using Half = std::uint32_t __attribute__((vector_size(16)));
  constexpr std::size_t last_at = kWordAt[kWords - 1];
  // copy_image's move of words kStepWord and kStepWord + 1 (the upper half of wide word 1 and
  // the lower half of wide word 2), first and for the `stepped` images alone: a zero step
  // leaves an image as it is, and the compare below then reads every image straight from memory.
  const Half zero = {};
  for (std::uint32_t todo = stepped; todo != 0; todo &= todo - 1) {
    AccessPlan& plan = plans[std::countr_zero(todo)];
    auto* const image = reinterpret_cast<unsigned char*>(plan.image);
    WideWord img1;
    WideWord img2;
    Half s0;
    Half s1;
    std::memcpy(&img1, image + 32, 32);
    std::memcpy(&img2, image + 64, 32);
    std::memcpy(&s0, &plan.step[0], sizeof(Half));
    std::memcpy(&s1, &plan.step[1], sizeof(Half));
    img1 += __builtin_shufflevector(zero, s0, 0, 1, 2, 3, 4, 5, 6, 7);
    img2 += __builtin_shufflevector(s1, zero, 0, 1, 2, 3, 4, 5, 6, 7);
    std::memcpy(image + 32, &img1, 32);
    std::memcpy(image + 64, &img2, 32);
  }
  WideWord d = {};
  Half d_last = {};
  const int n = kCount > 0 ? kCount : count;
#pragma GCC unroll 8
  for (int k = 0; k < n; ++k) {
    const auto* const bytes = reinterpret_cast<const unsigned char*>(&args.tensor(k));
    auto* const to = reinterpret_cast<unsigned char*>(out + k);
    WideWord words[3];
#pragma GCC unroll 4
    for (int w = 0; w < 3; ++w) {
      std::memcpy(&words[w], bytes + 32 * w, 32);
      std::memcpy(to + 32 * w, &words[w], 32);
    }
    Half last;
    std::memcpy(&last, bytes + last_at, sizeof(Half));
    std::memcpy(to + last_at, &last, sizeof(Half));
    if (((imaged >> k) & 1u) == 0) continue;  // a closed free read: copied, checked by fields
    AccessPlan& plan = plans[k];
    const auto* const image = reinterpret_cast<const unsigned char*>(plan.image);
    const auto* const mask = reinterpret_cast<const unsigned char*>(plan.mask);
    WideWord img[3];
    WideWord m[3];
#pragma GCC unroll 4
    for (int w = 0; w < 3; ++w) {
      std::memcpy(&img[w], image + 32 * w, 32);
      std::memcpy(&m[w], mask + 32 * w, 32);
    }
    d |= ((words[0] ^ img[0]) & m[0]) | ((words[1] ^ img[1]) & m[1]) | ((words[2] ^ img[2]) & m[2]);
    Half image_last;
    Half mask_last;
    std::memcpy(&image_last, image + 16 * (kWords - 1), sizeof(Half));
    std::memcpy(&mask_last, mask + 16 * (kWords - 1), sizeof(Half));
    d_last |= (last ^ image_last) & mask_last;
  }
  __m256i v;
  std::memcpy(&v, &d, sizeof(v));
  std::uint64_t halves[2];
  std::memcpy(halves, &d_last, sizeof(halves));
  return _mm256_testz_si256(v, v) != 0 && (halves[0] | halves[1]) == 0;
}

template <int kCount>
bool LoopDriver::masked_wide(AccessPlan* plans, const Args& args, int count, Tensor* out,
                             std::uint32_t imaged, std::uint32_t stepped) {
  return masked_wide_n<kCount>(plans, args, count, out, imaged, stepped);
}

LoopDriver::MaskedWide LoopDriver::masked_wide_for(std::uint32_t count) {
  // Unrolled for the usual argument counts (the loop's own steps cost ~7 instructions an
  // argument); the rest looped.
  static constexpr MaskedWide kFor[8] = {&masked_wide<0>, &masked_wide<0>, &masked_wide<2>,
                                         &masked_wide<3>, &masked_wide<4>, &masked_wide<5>,
                                         &masked_wide<6>, &masked_wide<7>};
  return kFor[count <= 7 ? count : 0];
}

// After exact_wide_n's definition, so it inlines here.
template <bool narrow, int kCount>
bool LoopDriver::exact_wide(AccessPlan* plans, const Args& args, int count) {
  static_assert(
      sizeof(Tensor) == 104 && kWordAt[kStepWord] == 48 && kWords == 7 && kWordAt[kWords - 1] <= 96,
      "three 32-byte words and an 8-byte tail cover the Tensor, the box offsets in "
      "words kStepWord and kStepWord + 1 (wide words 1 and 2)");
  return exact_wide_n<narrow, kCount>(plans, args, count);
}

LoopDriver::ExactWide LoopDriver::exact_wide_for(std::uint32_t count, bool narrow) {
  static constexpr ExactWide kNarrow[5] = {&exact_wide<true, 0>, &exact_wide<true, 1>,
                                           &exact_wide<true, 2>, &exact_wide<true, 3>,
                                           &exact_wide<true, 4>};
  static constexpr ExactWide kFull[5] = {&exact_wide<false, 0>, &exact_wide<false, 1>,
                                         &exact_wide<false, 2>, &exact_wide<false, 3>,
                                         &exact_wide<false, 4>};
  const std::uint32_t k = count <= 4 ? count : 0;  // 0: the looped instance
  return narrow ? kNarrow[k] : kFull[k];
}
#else
LoopDriver::ExactWide LoopDriver::exact_wide_for(std::uint32_t, bool) {
  return nullptr;  // never called through: set_wide_compare(true) needs x86-64
}
LoopDriver::MaskedWide LoopDriver::masked_wide_for(std::uint32_t) {
  return nullptr;  // never called through: set_wide_compare(true) needs x86-64
}
#endif

void LoopDriver::reset() {
  stack_.clear();
  top_ = nullptr;
  families_.reset();
  owner_ = nullptr;
  recorders_.clear();
  refresh_replaying();
  started_ = nullptr;
  enabled_ = config_enabled_;
  planned_analysed_ = false;
  deferred_.clear();
  iteration_deferred_bytes_ = 0;
  deferred_compact_at_ = kDeferredCompact;
  loops_ = loops_analysed_ = iterations_ = iterations_analysed_ = tasks_analysed_ = 0;
  tasks_wide_ = 0;
  tasks_named_ = 0;
  patterns_ = tasks_trusted_ = iterations_trusted_ = 0;
  std::fill(std::begin(pattern_routes_), std::end(pattern_routes_), 0u);
  std::fill(std::begin(fallbacks_), std::end(fallbacks_), 0u);
  templates_reused_ = 0;
  plans_reused_ = 0;
  std::fill(std::begin(rejected_), std::end(rejected_), 0u);
  ++run_;  // kept_ stays: the next run of the orchestration may reuse its templates
  // Every task of the run has been consumed (the rings are reset): every record image is free.
  retired_images_.clear();
  free_images_.clear();
  for (const std::unique_ptr<RecordImage>& image : record_pool_)
    free_images_.push_back(image.get());
}

void LoopDriver::name_record_slow(Loop& loop, TaskPlan& task, const Args& args, Ring& ring,
                                  const KernelFn fns[3]) {
  if (task.record_image != nullptr) retire_image(task);
  // The distances name_record computes, iteration - record_base, fit the record's 32 bits.
  const bool fits = loop.iterations - loop.iteration <= std::int64_t{UINT32_MAX};
  task.record_image = fits ? take_image() : nullptr;
  const int count = args.tensor_count();
  if (task.record_image == nullptr) {
    task.record_iteration = kStaleImages;
    named_ = nullptr;
    // Into the record the next admit fills (Ring::tensor_storage: inline or the spill area).
    copy_tensors(ring.tensor_storage(ring.head(), count), args);
    return;
  }
  RecordImage& image = *task.record_image;
  copy_tensors(image.base, args);
  std::copy(fns, fns + 3, image.fns);  // the position's: same_kernels compared the ids
  // The lanes compare_exact and exact_wide move, one word each.
  static_assert(RecordImage::kStepAt == kWordAt[kStepWord] &&
                RecordImage::kStepLanes * 4 == 2 * sizeof(Word) &&
                kWordAt[kStepWord + 1] == kWordAt[kStepWord] + sizeof(Word));
  const AccessPlan* const plans = loop.plans.data() + task.first_access;
  for (int k = 0; k < count; ++k) {
    std::memcpy(&image.step[k][0], &plans[k].step[0], sizeof(Word));
    std::memcpy(&image.step[k][4], &plans[k].step[1], sizeof(Word));
  }
  task.record_base = task.record_iteration = loop.iteration;
  named_ = image.base;
  named_distance_ = 0;
}

void LoopDriver::set_edges(const loops::LoopTemplate& tmpl, TaskPlan& task,
                           std::uint32_t position) {
  const loops::TemplateTaskDeps& deps = tmpl.deps(position);
  task.edges = !deps.same_iteration.empty() || !deps.carried.empty();
  task.one_edge = deps.same_iteration.empty() && deps.carried.size() == 1 &&
                  deps.carried[0].min_distance == deps.carried[0].max_distance;
  task.edge_producer = task.one_edge ? deps.carried[0].producer : 0;
  task.edge_distance = task.one_edge ? deps.carried[0].min_distance : 0;
}

RecordImage* LoopDriver::take_image() {
  if (!free_images_.empty()) {
    RecordImage* const image = free_images_.back();
    free_images_.pop_back();
    return image;
  }
  if (!retired_images_.empty()) {
    const RetiredImage& oldest = retired_images_.front();
    bool passed = true;
    for (std::size_t r = 0; r < std::min<std::size_t>(rings_.size(), kRingCount); ++r) {
      if (rings_[r] != nullptr &&
          static_cast<std::int32_t>(rings_[r]->retired() - oldest.heads[r]) < 0) {
        passed = false;
      }
    }
    if (passed) {
      RecordImage* const image = oldest.image;
      retired_images_.pop_front();
      return image;
    }
  }
  if (record_pool_.size() >= kMaxRecordImages) return nullptr;
  record_pool_.push_back(std::make_unique<RecordImage>());
  return record_pool_.back().get();
}

void LoopDriver::retire_image(TaskPlan& task) {
  RecordImage* const image = task.record_image;
  tasks_named_ += static_cast<std::uint64_t>(task.record_iteration - task.record_base + 1);
  task.record_image = nullptr;
  task.record_iteration = kStaleImages;
  RetiredImage retired{image, {}};
  for (std::size_t r = 0; r < std::min<std::size_t>(rings_.size(), kRingCount); ++r)
    retired.heads[r] = rings_[r] != nullptr ? rings_[r]->head() : 0;
  retired_images_.push_back(retired);
}

void LoopDriver::retire_images(Loop& loop) {
  for (TaskPlan& task : loop.task_plans) {
    if (task.record_image != nullptr) retire_image(task);
  }
}

void LoopDriver::run_arguments(std::span<const Tensor> tensors) {
  run_buffers_.clear();
  for (const Tensor& t : tensors)
    run_buffers_.push_back(reinterpret_cast<std::uintptr_t>(t.buffer()));
}

void LoopDriver::fill_stats(RunStats* stats) const {
  stats->loops = loops_;
  stats->loops_analysed = loops_analysed_;
  stats->loop_iterations = iterations_;
  stats->loop_iterations_analysed = iterations_analysed_;
  stats->loop_tasks_analysed = tasks_analysed_;
  stats->loop_tasks_replayed_wide = tasks_wide_;
  stats->loop_tasks_named = tasks_named_;
  stats->loop_fallbacks = 0;
  stats->loop_fallback_reasons.clear();
  for (int r = 1; r < static_cast<int>(Fallback::count); ++r) {
    if (fallbacks_[r] == 0) continue;
    stats->loop_fallbacks += fallbacks_[r];
    stats->loop_fallback_reasons.emplace_back(loops::fallback_name(static_cast<Fallback>(r)),
                                              fallbacks_[r]);
  }
  stats->pattern_loops = patterns_;
  stats->pattern_tasks_trusted = tasks_trusted_;
  stats->pattern_iterations_trusted = iterations_trusted_;
  stats->pattern_lambda_reasons.clear();
  for (int r = 1; r < static_cast<int>(loops::PatternRoute::count); ++r) {
    if (pattern_routes_[r] == 0) continue;
    stats->pattern_lambda_reasons.emplace_back(
        loops::pattern_route_name(static_cast<loops::PatternRoute>(r)), pattern_routes_[r]);
  }
  stats->loop_templates_reused = templates_reused_;
  stats->loop_plans_reused = plans_reused_;
  stats->loop_templates_rejected = 0;
  stats->loop_template_rejections.clear();
  for (int r = 1; r < static_cast<int>(loops::Rebind::count); ++r) {
    if (rejected_[r] == 0) continue;
    stats->loop_templates_rejected += rejected_[r];
    stats->loop_template_rejections.emplace_back(loops::rebind_name(static_cast<loops::Rebind>(r)),
                                                 rejected_[r]);
  }
}

std::shared_ptr<loops::LoopTasks> LoopDriver::take_table(std::int64_t iterations) {
  // A table no family holds any more keeps its capacity: no reallocation (and no fresh pages)
  // while a long loop fills it. The largest free one: the loops of a run begin outermost first,
  // so the outer loop (the most tasks) gets back the table it grew in the last run. Taking the
  // first free one gave it a nested loop's small table, grown again every run (a new 32 KiB
  // block and fresh heap pages each run for paged attention's request loop until the freed
  // blocks could serve it: docs/performance.md, session 20, pa24).
  std::shared_ptr<loops::LoopTasks>* best = nullptr;
  for (auto& spare : spare_tables_) {
    if (spare.use_count() == 1 &&
        (best == nullptr || spare->tasks.capacity() > (*best)->tasks.capacity())) {
      best = &spare;
    }
  }
  std::shared_ptr<loops::LoopTasks> table;
  if (best != nullptr) {
    table = std::move(*best);
    std::swap(*best, spare_tables_.back());
    spare_tables_.pop_back();
    table->tasks.clear();
    table->iteration_start.clear();
  } else {
    table = std::make_shared<loops::LoopTasks>();
  }
  table->iteration_start.reserve(
      static_cast<std::size_t>(std::clamp<std::int64_t>(iterations, 0, kReserveIterations)));
  return table;
}

void LoopDriver::recycle_table(std::shared_ptr<loops::LoopTasks> table) {
  if (table == nullptr) return;
  if (spare_tables_.size() >= kSpareTables) spare_tables_.erase(spare_tables_.begin());
  spare_tables_.push_back(std::move(table));
}

void LoopDriver::update_owner() {
  // The innermost loop that is learning or analysing owns the submits; the learning loops below
  // it (whose iterations contain it) record them too. Loops that fell back are skipped: a loop
  // below one can only be a learner (a loop begun inside an analysing one is transparent).
  owner_ = nullptr;
  recorders_.clear();
  for (auto it = stack_.rbegin(); it != stack_.rend(); ++it) {
    Loop* const loop = it->get();
    if (loop->transparent || loop->state == Loop::State::fallback) continue;
    if (owner_ == nullptr) {
      owner_ = loop;
    } else if (loop->state == Loop::State::learning) {
      recorders_.push_back(loop);
    }
  }
  refresh_replaying();
}

void LoopDriver::record_outer(const KernelId kernels[3], bool inline_task, const Args& args) {
  for (Loop* loop : recorders_)
    plan_learning(*loop, kernels, inline_task, args);
}

void LoopDriver::note_recorders(TaskId id) {
  for (Loop* loop : recorders_) {
    loop->table->tasks.push_back(id);
    ++loop->position;
  }
}

void LoopDriver::begin_loop(std::int64_t iterations, std::uint64_t next_sequence) {
  ++loops_;
  // Families of finished loops die with their last task; drop them now and then.
  if (families_.size() > 64 && stack_.empty()) families_.sweep();
  // A finished loop's deferred entries go into the map before this loop may look it up.
  if (owner_ == nullptr) flush_deferred();
  auto loop = std::make_unique<Loop>();
  loop->ordinal = loops_ - 1;
  loop->depth = stack_.size();
  loop->table = take_table(iterations);
  loop->iterations = iterations;
  loop->first_sequence = next_sequence;
  // Inside a loop that is being analysed, this loop's tasks are part of its iterations. Inside
  // one that is learning, it analyses itself (its iterations' submits are recorded by every
  // learning loop around it too, see update_owner), so the learning iterations of an outer loop
  // run their inner loops analysed rather than per task.
  loop->transparent = (owner_ != nullptr && owner_->state == Loop::State::analysing) || !enabled_;
  if (owner_ != nullptr && owner_->state == Loop::State::learning)
    owner_->current.nested_loops.push_back(iterations);
  for (Loop* learner : recorders_)
    learner->current.nested_loops.push_back(iterations);
  // Two iterations teach the template; a third is the first that can use it.
  if (!loop->transparent && iterations < 3) loop->state = Loop::State::fallback;
  stack_.push_back(std::move(loop));
  top_ = stack_.back().get();
  update_owner();
}

void LoopDriver::end_loop() {
  if (stack_.empty()) return;
  // The deferred entries stay until something may look them up (flush_deferred) or a scope end
  // drops them (scope_ended): a loop that is its scope's last work never inserts them.
  close_families(*stack_.back());
  retire_images(*stack_.back());  // before keep_template: kept plans name no image
  if (stack_.back()->proven) keep_template(*stack_.back());
  recycle_table(std::move(stack_.back()->table));
  Loop& ended = *stack_.back();
  if (!ended.external.empty()) {
    spare_starts_.external = std::move(ended.external);
    spare_starts_.fixed_external = std::move(ended.fixed_external);
    spare_starts_.families = std::move(ended.families);  // cleared by close_families
    spare_starts_.filled = std::move(ended.filled);
  }
  stack_.pop_back();
  top_ = stack_.empty() ? nullptr : stack_.back().get();
  update_owner();
}

void LoopDriver::begin_iteration_slow(std::int64_t index) {
  Loop& loop = *stack_.back();  // not transparent (begin_iteration)
  ++iterations_;
  if (loop.state == Loop::State::fallback) return;
  loop.iteration = index;
  loop.position = 0;
  loop.table->iteration_start.push_back(loop.table->tasks.size());
  if (loop.state != Loop::State::learning) return;
  loop.current.clear(index);
  if (index == 0 && loop.learn_attempts == 0 && !kept_.empty() && recorders_.empty())
    try_kept_from_start(loop);
}

void LoopDriver::end_iteration_slow() {
  Loop& loop = *stack_.back();  // not transparent (end_iteration)
  if (loop.state == Loop::State::fallback) return;
  if (loop.state == Loop::State::analysing) {
    if (loop.position != loop.tmpl.task_count()) {
      fall_back(loop, Fallback::mismatch);  // fewer tasks than the template
      return;
    }
    settle_deferred();
    ++iterations_analysed_;
    if (!loop.counted_analysed) {
      loop.counted_analysed = true;
      ++loops_analysed_;
    }
    // Its first analysed iteration matched: a mismatch now falls back. A template started before
    // iteration 0 (its base, try_kept_from_start) is first tested on its strides by iteration 1,
    // so a miss there still relearns.
    if (!loop.from_start || loop.iteration > 0) loop.rebound = false;
    loop.steady = !loop.rebound;  // the fast paths' state from now on
    return;
  }
  // Learning: does an earlier run's template fit the first iteration? Does this iteration repeat
  // the previous one?
  if (loop.iteration == 0 && loop.learn_attempts == 0 && !kept_.empty() && try_kept(loop)) return;
  if ((loop.learn_attempts > 0 || loop.iteration > 0) && try_template(loop)) return;
  std::swap(loop.previous, loop.current);
  // The next iteration most likely repeats this one: its record grows once, not by doublings.
  loop.current.tasks.reserve(loop.previous.tasks.size());
  loop.current.accesses.reserve(loop.previous.accesses.size());
}

// Cold (once per loop, or a few times while learning): kept out of line so the per-iteration
// path stays small, and so profiles show the per-loop cost apart (docs/sim.md, loop_setup_ratio).
[[gnu::noinline]] bool LoopDriver::try_template(Loop& loop) {
  // The template takes the current record over when it learns (no copy of its accesses).
  const Fallback learned =
      loops::LoopTemplate::learn(loop.previous, std::move(loop.current), &loop.tmpl);
  if (learned == Fallback::nested_lengths) {
    // A data-dependent shape: its nested loops analyse themselves from the next iteration on.
    fall_back(loop, learned);
    return true;
  }
  if (learned == Fallback::none) {
    analyse_with_template(loop);
    return true;
  }
  if (++loop.learn_attempts >= kMaxLearnAttempts) {
    fall_back(loop, Fallback::no_template);
    return true;
  }
  return false;
}

void LoopDriver::analyse_with_template(Loop& loop) {
  if (loop.iteration + 1 >= loop.iterations) return;  // nothing left to analyse
  if (!recorders_.empty() &&
      (loop.iterations - loop.iteration - 1) * loop.tmpl.task_count() < kMinNestedAnalysedTasks) {
    fall_back(loop, Fallback::too_short);  // too few tasks to repay the set-up
    return;
  }
  // A rebound template proven for this range keeps its edges (LoopTemplate::rebind). One based on
  // iteration 0 (rebound to a first iteration) is proved for the whole loop: a range's edges order
  // every conflicting pair of any range inside it (carried edges reach back only to the first
  // analysed iteration; the ones before are in the map), and a later run can analyse from
  // iteration 0 on the same proof (try_kept_from_start).
  // A template just learned from iterations 0 and 1 is rebased on iteration 0 (its `previous`
  // record), so that proved for the whole loop and kept, it serves the next run from its first
  // iteration (try_kept_from_start) instead of that run learning its first iteration and
  // rebinding. Only where try_kept_from_start may offer it (no learning loop around this one);
  // if the whole loop's proof falls back where the rest's might not, it goes back on iteration 1.
  const bool rebased = loop.iteration == 1 && loop.tmpl.base_iteration() == 1 &&
                       loop.previous.index == 0 && !loop.tmpl.rebound() && recorders_.empty() &&
                       loop.tmpl.rebase(loop.previous);
  const std::int64_t first = loop.tmpl.base_iteration() == 0 ? 0 : loop.iteration + 1;
  if (!loop.tmpl.proven_for(first, loop.iterations - 1)) {
    Fallback proof = loop.tmpl.prove(first, loop.iterations - 1);
    if (proof != Fallback::none && rebased && loop.tmpl.rebase(loop.previous))
      proof = loop.tmpl.prove(loop.iteration + 1, loop.iterations - 1);
    if (proof != Fallback::none) {
      fall_back(loop, proof);
      return;
    }
  }
  loop.proven = true;
  start_analysis(loop);
  if (loop.state == Loop::State::analysing) started_ = &loop.tmpl;
}

[[gnu::noinline]] bool LoopDriver::try_kept(Loop& loop) {
  const auto it = std::find_if(kept_.begin(), kept_.end(), [&](const Kept& k) {
    return k.ordinal == loop.ordinal && k.depth == loop.depth;
  });
  if (it == kept_.end()) return false;
  // Asked before rebind takes the record over (the kept base is gone after it).
  const bool same = !it->task_plans.empty() && same_base(it->tmpl, loop.current);
  const loops::Rebind fit = it->tmpl.rebind(loop.current);
  if (fit != loops::Rebind::fits) {
    ++rejected_[static_cast<int>(fit)];
    return false;  // learn as usual: this iteration is the first record
  }
  ++templates_reused_;
  // The rebound template's start failure comes with it; a rejected one's stays with it (the loop
  // learns a template of its own, which has none).
  loop.start_failed = it->start_failed;
  loop.tmpl = std::move(it->tmpl);
  if (same) {
    loop.plans = std::move(it->plans);
    loop.task_plans = std::move(it->task_plans);
    loop.plans_kept = true;
    loop.kept_iterations = it->iterations;
    loop.routes_deps = it->routes_deps;
  }
  kept_.erase(it);  // kept again when the loop ends
  analyse_with_template(loop);
  // Until its first analysed iteration has passed, a mismatch means another loop: learn it.
  loop.rebound = loop.state == Loop::State::analysing;
  loop.steady = false;
  return true;
}

[[gnu::noinline]] void LoopDriver::try_kept_from_start(Loop& loop) {
  const auto it = std::find_if(kept_.begin(), kept_.end(), [&](const Kept& k) {
    return k.ordinal == loop.ordinal && k.depth == loop.depth;
  });
  if (it == kept_.end()) return;
  // A base at iteration 0 came from rebind, which admits no buffer made by an earlier iteration
  // (none exists before the first). A template without its plans, or for another trip count,
  // waits for the first iteration's record (try_kept), as does a loop that missed here once.
  if (it->tmpl.base_iteration() != 0 || it->task_plans.empty() ||
      it->iterations != loop.iterations || it->start_failed) {
    return;
  }
  // The kept run's argument buffers are this run's arguments of the same index (the engine's
  // device copies are new buffers each run). A guess: every submit checks its buffers, and one
  // the template named otherwise (a buffer that is no argument) is expected unchanged.
  std::vector<std::pair<std::uintptr_t, std::uintptr_t>> renames;
  for (const auto& [address, k] : it->arguments) {
    if (k >= run_buffers_.size()) return;
    if (run_buffers_[k] != address) renames.emplace_back(address, run_buffers_[k]);
  }
  if (!renames.empty()) {
    // The kept buffers (each once: keep_template listed them), then their names in this run
    // (renamed or their own): all distinct, or two kept buffers would become one.
    using Name = std::pair<std::uintptr_t, std::uint64_t>;
    std::vector<Name> names;
    names.reserve(it->outer_names.size());
    for (Name name : it->outer_names) {
      if (!TaskId::from_value(name.second).valid()) {
        const auto renamed = std::find_if(renames.begin(), renames.end(),
                                          [&](const auto& r) { return r.first == name.first; });
        if (renamed != renames.end()) name.first = renamed->second;
      }
      if (std::find(names.begin(), names.end(), name) != names.end()) return;
      names.push_back(name);
    }
  }
  ++templates_reused_;
  loop.tmpl = std::move(it->tmpl);
  if (!renames.empty()) loop.tmpl.rename_outer(renames);
  loop.plans = std::move(it->plans);
  loop.task_plans = std::move(it->task_plans);
  loop.plans_kept = true;
  loop.kept_iterations = it->iterations;
  loop.routes_deps = it->routes_deps;
  loop.from_start = true;
  kept_.erase(it);     // kept again when the loop ends
  loop.tmpl.reused();  // charged as a kept set-up unless the range is new (prove() clears it)
  // analyse_with_template starts at the iteration after loop.iteration: this one.
  loop.iteration = -1;
  analyse_with_template(loop);
  loop.iteration = 0;
  // Until its first analysed iteration (this one) has passed, a miss means another loop (other
  // buffers, shapes or trip counts): relearn, and learn the first iteration in later runs.
  loop.rebound = loop.state == Loop::State::analysing;
  loop.steady = false;
}

void LoopDriver::keep_template(Loop& loop) {
  if (started_ == &loop.tmpl) started_ = nullptr;
  loop.proven = false;
  const std::size_t size = loop.tmpl.access_count();
  if (size > kMaxKeptAccesses) return;
  const auto same = [&](const Kept& k) {
    return k.ordinal == loop.ordinal && k.depth == loop.depth;
  };
  kept_.erase(std::remove_if(kept_.begin(), kept_.end(), same), kept_.end());
  const auto total = [&] {
    std::size_t n = size;
    for (const Kept& k : kept_)
      n += k.tmpl.access_count();
    return n;
  };
  while (!kept_.empty() && (kept_.size() >= kMaxKept || total() > kMaxKeptAccesses)) {
    kept_.erase(std::min_element(kept_.begin(), kept_.end(),
                                 [](const Kept& a, const Kept& b) { return a.used < b.used; }));
  }
  Kept kept;
  kept.ordinal = loop.ordinal;
  kept.depth = loop.depth;
  kept.used = run_;
  kept.tmpl = std::move(loop.tmpl);
  kept.start_failed = loop.start_failed;
  if (kept.tmpl.base_iteration() == 0) {
    // Its outer buffers, each once, and which of them were this run's arguments
    // (try_kept_from_start renames them). Accesses to one buffer mostly follow each other: the
    // last one listed is asked first.
    for (std::uint32_t a = 0; a < kept.tmpl.access_count(); ++a) {
      const loops::BufferRef& b = kept.tmpl.access(a).buffer;
      if (b.kind != loops::BufferRef::Kind::outer) continue;
      const std::pair<std::uintptr_t, std::uint64_t> name{b.address, b.owner};
      auto& names = kept.outer_names;
      if (!names.empty() &&
          (names.back() == name || std::find(names.begin(), names.end(), name) != names.end())) {
        continue;  // listed, and so asked below, at its first access
      }
      names.push_back(name);
      if (TaskId::from_value(b.owner).valid()) continue;
      const auto k = std::find(run_buffers_.begin(), run_buffers_.end(), b.address);
      if (k == run_buffers_.end()) continue;
      const auto index = static_cast<std::uint32_t>(k - run_buffers_.begin());
      if (std::none_of(kept.arguments.begin(), kept.arguments.end(),
                       [&](const auto& listed) { return listed.first == b.address; })) {
        kept.arguments.emplace_back(b.address, index);
      }
    }
  }
  // The plans as build_plans left them (a relearned loop has none): reused by the next run when
  // its first iteration repeats this base (try_kept, reuse_plans).
  if (loop.state == Loop::State::analysing && !loop.plans_changed && !loop.task_plans.empty()) {
    kept.plans = std::move(loop.plans);
    kept.task_plans = std::move(loop.task_plans);
    kept.iterations = loop.iterations;
    kept.routes_deps = loop.routes_deps;
  }
  kept_.push_back(std::move(kept));
}

bool LoopDriver::same_base(const loops::LoopTemplate& kept, const loops::IterationRecord& now) {
  if (now.index != kept.base_iteration() || now.tasks.size() != kept.task_count() ||
      now.accesses.size() != kept.access_count()) {
    return false;
  }
  for (std::uint32_t a = 0; a < kept.access_count(); ++a) {
    const loops::AccessRecord& k = kept.access(a);
    const loops::AccessRecord& n = now.accesses[a];
    if (k.tag != n.tag) return false;
    if (!loops::is_tracked(k.tag)) continue;  // a fresh output: only its tag is planned
    const BufferRef& kb = k.buffer;
    const BufferRef& nb = n.buffer;
    // An outer buffer may be another one (rebind checks the renaming is one bijection, and
    // reuse_plans writes the new identity into the plans); whether it has a creator is planned.
    if (kb.kind != nb.kind || kb.iteration != nb.iteration || kb.task != nb.task ||
        kb.arg != nb.arg ||
        TaskId::from_value(kb.owner).valid() != TaskId::from_value(nb.owner).valid()) {
      return false;
    }
    const Tensor& kt = k.tensor;
    const Tensor& nt = n.tensor;
    if (kt.layout_offset() != nt.layout_offset() || kt.version() != nt.version() ||
        kt.dtype() != nt.dtype() || kt.ndims() != nt.ndims()) {
      return false;
    }
    for (int r = 0; r < kt.ndims(); ++r) {
      if (kt.raw_dim(r) != nt.raw_dim(r) || kt.box_offset(r) != nt.box_offset(r) ||
          kt.box_extent(r) != nt.box_extent(r) || kt.perm(r) != nt.perm(r)) {
        return false;
      }
    }
  }
  return true;
}

void LoopDriver::rename(AccessPlan& plan, const loops::AccessRecord& rec) {
  if (plan.address == rec.buffer.address && plan.owner == rec.buffer.owner) return;
  plan.address = rec.buffer.address;
  plan.owner = rec.buffer.owner;
  // The identity bytes of the image (build_image covers them for an outer buffer): the base
  // pointer in word 0 and the owner in word 1, which no other word (the last one starts past
  // them) and no step word holds.
  constexpr Tensor::FieldOffsets at = Tensor::field_offsets();
  static_assert(kWordAt[0] == 0 && at.base + sizeof(void*) <= kWordAt[1] &&
                    at.owner >= kWordAt[1] && at.owner + sizeof(TaskId) <= kWordAt[2] &&
                    kWordAt[kWords - 1] >= at.owner + sizeof(TaskId) && kStepWord >= 2,
                "rename writes the identity into words 0 and 1 alone");
  const auto* const bytes = reinterpret_cast<const unsigned char*>(&rec.tensor);
  std::memcpy(reinterpret_cast<unsigned char*>(&plan.image[0]) + at.base, bytes + at.base,
              sizeof(void*));
  std::memcpy(reinterpret_cast<unsigned char*>(&plan.image[1]) + (at.owner - kWordAt[1]),
              bytes + at.owner, sizeof(TaskId));
}

bool LoopDriver::reuse_plans(Loop& loop) {
  loop.plans_kept = false;
  const loops::LoopTemplate& tmpl = loop.tmpl;
  bool same = loop.kept_iterations == loop.iterations &&
              loop.task_plans.size() == tmpl.task_count() &&
              loop.plans.size() == tmpl.access_count();
  // The per-run routes build_plans read from start_analysis' questions, after this run's names
  // of the outer buffers (the rebound template's) replace the kept ones. Only the template's
  // tracked outer accesses (outer_accesses) have any: build_plans set dense, fixed and quiet from
  // start_analysis, which sets them for those alone, and nothing else sets them, so every other
  // plan has all three false now as then (the kept plans are the template's: same tags and
  // kinds).
  for (const loops::LoopTemplate::OuterAccess& o : loop.tmpl.outer_accesses().list) {
    if (!same) break;
    const std::uint32_t a = o.access;
    AccessPlan& plan = loop.plans[a];
    if (!plan.tracked || !plan.outer) {
      same = false;
      break;
    }
    rename(plan, tmpl.access(a));
    const bool quiet =
        !TaskId::from_value(plan.owner).valid() && !loop.dense[a] && loop.external[a].empty();
    same = plan.dense == loop.dense[a] && plan.fixed == loop.fixed[a] && plan.quiet == quiet;
  }
  if (!same) {
    loop.plans.clear();
    loop.task_plans.clear();  // build_plans adds to a position's masks: start from none
    return false;
  }
  // The routes derived last (build_plans, or plan_analysed after a family closed) from these
  // template edges: a position keeps them when its family mask is the same and routes_stand.
  const bool same_edges = loop.routes_deps != 0 && loop.routes_deps == tmpl.deps_id();
  for (TaskPlan& task : loop.task_plans) {
    // build_plans closed these free reads' families (their images could not be built): so
    // does this run, on its own families.
    for (std::uint32_t todo = task.deferred_reads; todo != 0; todo &= todo - 1) {
      const std::uint32_t a =
          task.first_access + static_cast<std::uint32_t>(std::countr_zero(todo));
      if (loop.families[a] != nullptr) {
        loops::FamilyTable::close(loop.families[a]);
        loop.families[a] = nullptr;
      }
    }
    const std::uint32_t routed_family = task.family;
    task.family = 0;
    for (std::uint32_t k = 0; k < task.access_count; ++k) {
      if (loop.families[task.first_access + k] != nullptr) task.family |= 1u << k;
    }
    list_families(loop, task);
    task.image_iteration = kStaleImages;  // place_images computes them from `start`
    task.prepared.ready = false;          // its header is made again by the position's first submit
    task.prepared.layout_ready = false;   // and its output layout (submit_wide)
    task.prepared.plan_ready = false;     // and its checked plan (submit_wide)
    task.prepared.wide_ready = false;
    // An earlier loop's record image (retired at its end; end_loop clears it already).
    task.record_image = nullptr;
    task.record_iteration = kStaleImages;
    if (!same_edges || task.family != routed_family || !routes_stand(loop, task)) {
      const std::uint32_t position = static_cast<std::uint32_t>(&task - loop.task_plans.data());
      set_edges(tmpl, task, position);
      route_producers(loop, task);
    }
    refresh_fast(task);
  }
  loop.routes_deps = tmpl.deps_id();
  loop.plan_count = tmpl.task_count();
  ++plans_reused_;
  return true;
}

bool LoopDriver::routes_stand(const Loop& loop, const TaskPlan& task) {
  // route_producers took external producers only from fixed_external (into `producers` when
  // direct, `steps` when created; a position that is neither kept none). A route that fell back
  // to collect() at some argument did so by the flags alone, whatever the entries.
  if (!task.producers.empty()) return false;
  for (const TaskPlan::Step& step : task.steps) {
    if (step.arg == TaskPlan::kExternalStep) return false;
  }
  for (std::uint32_t todo = task.collect; todo != 0; todo &= todo - 1) {
    const std::uint32_t a = task.first_access + static_cast<std::uint32_t>(std::countr_zero(todo));
    if (!loop.fixed_external[a].empty()) return false;
  }
  return true;
}

bool LoopDriver::element_access_slow(bool write, const Tensor& tensor) {
  if (owner_ == nullptr) return false;
  if (!recorders_.empty()) {
    // The learning loops around the owner see the access as one of their iterations' own.
    // (A copy: a fall-back rebuilds recorders_.)
    const std::vector<Loop*> learners = recorders_;
    for (Loop* learner : learners) {
      if (learner->state != Loop::State::learning) continue;
      if (write) {
        fall_back(*learner, Fallback::element_access);
      } else {
        learn_element_read(*learner, tensor);
      }
    }
    if (owner_ == nullptr) return false;
  }
  Loop& loop = *owner_;
  if (write) {
    fall_back(loop, Fallback::element_access);
    return false;
  }
  const bool external = !tensor.producer().valid();
  const auto address = reinterpret_cast<std::uintptr_t>(tensor.buffer());
  if (loop.state == Loop::State::analysing && external &&
      std::find(loop.quiet_reads.begin(), loop.quiet_reads.end(), address) !=
          loop.quiet_reads.end()) {
    loop.last_quiet = address;
    return true;
  }
  // A read of a buffer the loop never writes (a block table, a read-only input) sees the same
  // value in a sequential run and here: the template does not depend on it, and an iteration its
  // value reshapes fails its prediction check. A read of what the loop writes makes iterations
  // data-dependent on the loop's own tasks: the rest of the loop runs per task.
  if (loop.state == Loop::State::learning) {
    learn_element_read(loop, tensor);
    return false;
  }
  const BufferRef ref = buffer_of(loop, tensor);
  if (loop_writes(loop, ref)) {
    fall_back(loop, Fallback::element_read);
    return false;
  }
  // An external buffer with no live writer now (no map entry, no affine family) has none until
  // the analysis ends: every submit until then is an analysed one, which does not write it. Its
  // reads need no dependence discovery.
  if (!external || loop.quiet_reads.size() >= kMaxQuietReads) return false;
  const std::uint64_t owner = tensor.producer().value();
  bool writer = families_.has_buffer(address, owner);
  if (!writer) {
    dependence_.for_each_live_entry(address, owner, [&](const MapEntry& e) {
      if (e.kind == static_cast<std::uint8_t>(AccessKind::write)) writer = true;
    });
  }
  if (!writer) {
    loop.quiet_reads.push_back(address);
    loop.last_quiet = address;
  }
  return !writer;
}

void LoopDriver::learn_element_read(Loop& loop, const Tensor& tensor) {
  const BufferRef ref = buffer_of(loop, tensor);
  if (ref.kind == BufferRef::Kind::fresh) {
    fall_back(loop, Fallback::element_read);
    return;
  }
  // Once per buffer: start_analysis checks each against the template's writes.
  const auto same = [&](const BufferRef& r) {
    return r.address == ref.address && r.owner == ref.owner;
  };
  if (std::none_of(loop.element_reads.begin(), loop.element_reads.end(), same))
    loop.element_reads.push_back(ref);
}

bool LoopDriver::loop_writes(const Loop& loop, const BufferRef& ref) const {
  if (ref.kind == BufferRef::Kind::fresh) return true;
  const loops::LoopTemplate& tmpl = loop.tmpl;
  for (std::uint32_t a = 0; a < tmpl.access_count(); ++a) {
    const loops::AccessRecord& rec = tmpl.access(a);
    if (loops::is_write(rec.tag) && rec.buffer.kind == BufferRef::Kind::outer &&
        rec.buffer.address == ref.address && rec.buffer.owner == ref.owner) {
      return true;
    }
  }
  return false;
}

void LoopDriver::close_families(Loop& loop) {
  for (loops::Family* f : loop.families) {
    if (f != nullptr) loops::FamilyTable::close(f);
  }
  loop.families.clear();
}

void LoopDriver::fall_back(Loop& loop, Fallback reason) {
  forget_runs(loop);
  if (loop.rebound && reason == Fallback::mismatch) {
    relearn(loop);
    return;
  }
  ++fallbacks_[static_cast<int>(reason)];
  // The rest of the loop asks the map, which must hold the analysed tasks' accesses by then.
  flush_deferred();
  loop.state = Loop::State::fallback;
  loop.steady = false;
  // The analysed iterations stay in their families (which keep the task table); the rest of the
  // loop goes into the TensorMap.
  close_families(loop);
  recycle_table(std::move(loop.table));
  loop.table = take_table(0);
  loop.external = {};
  loop.fixed_external = {};
  loop.filled.clear();
  loop.element_reads = {};
  loop.previous = {};
  loop.current = {};
  update_owner();
}

void LoopDriver::relearn(Loop& loop) {
  // Not the template this run's loop has after all: counted as rejected, not reused.
  --templates_reused_;
  ++rejected_[static_cast<int>(loops::Rebind::mismatch)];
  loop.rebound = false;
  loop.proven = false;
  // A template that served from the start and missed: later runs learn the first iteration. A
  // rebound one that missed is not this loop's template after all, nor is its start failure.
  loop.start_failed = loop.from_start;
  loop.from_start = false;
  // As in a fall-back, the analysed tasks' accesses go into the map (what is deferred) or stay in
  // their closed families; the learning iterations' lookups find them there. The task table
  // stays: learning names the buffers the loop made by their place in it (buffer_of), and the
  // closed families read only their own iterations' entries.
  flush_deferred();
  close_families(loop);
  retire_images(loop);
  loop.state = Loop::State::learning;
  loop.steady = false;
  loop.learn_attempts = 0;
  loop.external = {};
  loop.fixed_external = {};
  loop.filled.clear();
  loop.plans.clear();
  loop.task_plans.clear();  // build_plans adds to a position's masks: start from none
  loop.plan_count = 0;
  loop.plans_kept = false;
  loop.element_reads = {};
  loop.quiet_reads.clear();  // the learning iterations may write them
  loop.last_quiet = 0;
  loop.previous = {};
  // This iteration's record is partial (its analysed tasks were not recorded): the next
  // comparisons skip it (an index no iteration has), so the template comes from two later ones.
  loop.current = {};
  loop.current.index = -2;
  update_owner();
}

void LoopDriver::start_analysis(Loop& loop) {
  forget_runs(loop);
  // Nested loops of the learning iterations analysed themselves: what they deferred goes into
  // the map now, so the external producers below see it.
  flush_deferred();
  loop.state = Loop::State::analysing;
  refresh_replaying();
  loop.steady = false;  // until end_iteration_slow has counted an analysed iteration
  loop.first_analysed = loop.iteration + 1;
  loop.previous = {};
  const loops::LoopTemplate& tmpl = loop.tmpl;
  const std::uint32_t accesses = tmpl.access_count();
  // The per-access vectors of the last loop that ended (spare_starts_), cleared: not made again
  // and freed each run (a request template has ~550 accesses). Only a start fills them, at the
  // accesses it lists in `filled` (a fall-back or relearn empties them all).
  if (loop.external.empty() && loop.fixed_external.empty()) {
    loop.external = std::move(spare_starts_.external);
    loop.fixed_external = std::move(spare_starts_.fixed_external);
    loop.filled = std::move(spare_starts_.filled);
  }
  if (loop.families.empty()) loop.families = std::move(spare_starts_.families);
  for (const std::uint32_t a : loop.filled) {
    loop.external[a].clear();
    loop.fixed_external[a].clear();
  }
  loop.filled.clear();
  loop.external.resize(accesses);
  loop.fixed_external.resize(accesses);
  loop.dense.assign(accesses, false);
  loop.fixed.assign(accesses, false);
  // get_tensor_data while learning of a buffer the template writes: data-dependent iterations.
  for (const BufferRef& ref : loop.element_reads) {
    if (loop_writes(loop, ref)) {
      fall_back(loop, Fallback::element_read);
      return;
    }
  }
  loop.element_reads = {};
  // External producers: every live map entry that may meet an access anywhere in the analysed
  // range (iterations before the template's are in the map too). Each analysed task then keeps
  // only the entries its own box meets. Accesses that ask the same question get the same answer
  // (LoopTemplate::same_external_query: one buffer, read or write, and unless a free read, which
  // takes every write entry whatever its view, the same view in every iteration), so each
  // distinct question visits its buffer's live entries once: a request-sized template asks one
  // per buffer and view (4 for paged attention's: query, key and value cache, output), not one
  // per access (each visit list grows with the learning iterations' entries, so that was about
  // T x T visits). Which access asks which question, and which are fixed, the template alone
  // decides (outer_accesses: derived once, kept with the template across runs).
  const loops::LoopTemplate::OuterAccesses& outer = loop.tmpl.outer_accesses();
  for (const loops::LoopTemplate::OuterAccess& o : outer.list) {
    const std::uint32_t a = o.access;
    const loops::AccessRecord& rec = tmpl.access(a);
    std::vector<MapEntry>& external = loop.external[a];
    loops::LoopTemplate::Box box;
    bool have_box = false;
    if (o.leader != a) {
      external = loop.external[o.leader];
      loop.dense[a] = loop.dense[o.leader];
      if (loop.dense[a]) continue;
    } else {
      box = tmpl.footprint(a, loop.first_analysed, loop.iterations - 1);
      have_box = true;
      const bool dense = collect_external(dependence_, tmpl, a, box, &external);
      // Another loop's families on this buffer that this access may conflict with: per-task
      // lookups, which ask them (still exact). A read ignores read families (reads never
      // conflict), so the paged KV cache, read by every earlier request's block loop, needs no
      // lookups. No family can appear on the buffer while this analysis lasts but this loop's own
      // (added below, and covered by the template's edges): nested loops are part of its
      // iterations.
      const AccessKind kind = loops::is_write(rec.tag) ? AccessKind::write : AccessKind::read;
      // The families nested loops of the learning iterations left on the buffer count only
      // where they may meet the footprint (a free read's views may be anywhere).
      bool conflicting = false;
      if (tmpl.free_read(a)) {
        conflicting = families_.has_conflicting(rec.buffer.address, rec.buffer.owner, kind);
      } else if (families_.has_buffer(rec.buffer.address, rec.buffer.owner)) {
        std::uint64_t lo = 0;
        std::uint64_t hi = 0;
        footprint_bytes(rec.tensor, tmpl.rest(a), box, &lo, &hi);
        conflicting = families_.has_conflicting_in(rec.buffer.address, rec.buffer.owner, kind,
                                                   rec.tensor.version(), lo, hi);
      }
      if (dense || conflicting) {
        external = {};
        loop.dense[a] = true;
        continue;
      }
    }
    if (!external.empty()) loop.filled.push_back(a);  // (fixed_external: a part of external)
    // An access to the same box in every iteration meets the same external entries every time:
    // filter them once (a free read only while its view keeps that box, checked per task).
    if (o.fixed) {
      loop.fixed[a] = true;
      if (external.empty()) continue;
      if (!have_box) box = tmpl.footprint(a, loop.first_analysed, loop.iterations - 1);
      for (const MapEntry& e : external) {
        if (footprint_overlaps(rec.tensor, tmpl.rest(a), box, e))
          loop.fixed_external[a].push_back(e);
      }
    }
  }
  // One family per access to an outer buffer whose box moves by a constant stride: analysed
  // iterations stop inserting it into the TensorMap. A free read may move arbitrarily: its family
  // holds only while each view is the affine prediction (checked per task in record()). Each
  // buffer's list is looked up once, at its first access (outer_accesses numbers the buffers in
  // that order).
  loop.families.assign(accesses, nullptr);
  const std::shared_ptr<const loops::LoopTasks> table = loop.table;
  std::vector<loops::FamilyTable::Bucket> buckets;
  buckets.reserve(outer.buffer_accesses.size());
  for (const loops::LoopTemplate::OuterAccess& o : outer.list) {
    const loops::AccessRecord& rec = tmpl.access(o.access);
    if (o.buffer == buckets.size()) {
      buckets.push_back(
          families_.bucket(rec.buffer.address, rec.buffer.owner, outer.buffer_accesses[o.buffer]));
    }
    loop.families[o.access] = families_.add(
        buckets[o.buffer], loops::is_write(rec.tag) ? AccessKind::write : AccessKind::read,
        rec.tensor, tmpl.stride(o.access), loop.first_analysed, tmpl.task_of_access(o.access),
        table);
  }
  if (!loop.plans_kept || !reuse_plans(loop)) build_plans(loop);
}

void LoopDriver::record_slow(TaskSlot& task, const Args& args, const AccessRegion* regions) {
  record_unmapped(task, args);  // the deferred entry and the families' growth; the rest below
  const std::uint32_t skip = family_mask_ | deferred_mask_;
  if (skip == 0) {
    dependence_.record(task, args, regions);
  } else if ((skip & tracked_mask_) != tracked_mask_) {  // some access still goes into the map
    dependence_.record_except(task, args, regions, skip);
  }
}

void LoopDriver::flush_deferred_entries() {
  for (const Deferred& d : deferred_) {
    if (live(d.id) && d.task->id == d.id) {
      const TaskRecord& record = *d.task->record;
      for (std::uint32_t mask = d.mask; mask != 0; mask &= mask - 1) {
        const int k = std::countr_zero(mask);
        const Tensor& t = record.tensors[k];
        const TaskId creator = t.producer();  // none for an outer buffer the user wrapped
        if (creator.valid() && !dependence_.creator_retained(creator)) continue;  // unnameable
        const AccessKind kind = record.tags[k] == ArgTag::in ? AccessKind::read : AccessKind::write;
        dependence_.record_access(*d.task, make_region(t), kind);
      }
    }
  }
  deferred_.clear();
  iteration_deferred_bytes_ = 0;
}

void LoopDriver::prune_deferred(std::size_t from) {
  const auto wanted = [&](const Deferred& d) {
    if (!live(d.id) || d.task->id != d.id) return false;
    const TaskRecord& record = *d.task->record;
    for (std::uint32_t mask = d.mask; mask != 0; mask &= mask - 1) {
      const TaskId creator = record.tensors[std::countr_zero(mask)].producer();
      if (!creator.valid() || dependence_.creator_retained(creator)) return true;
    }
    return false;
  };
  const auto first = deferred_.begin() + static_cast<std::ptrdiff_t>(from);
  deferred_.erase(
      std::remove_if(first, deferred_.end(), [&](const Deferred& d) { return !wanted(d); }),
      deferred_.end());
}

void LoopDriver::compact_deferred() {
  // Whether a buffer can still be named (its creator's scope) is asked only by a flush, which
  // drops those it cannot. Reading each entry's record here cost more than the flushes it spared
  // (an analysed loop's entries are mostly never flushed: see scope_ended).
  drop_retired_deferred();
  deferred_compact_at_ = std::max(kDeferredCompact, 2 * deferred_.size());
}

void LoopDriver::drop_retired_deferred() {
  const auto retired = [&](const Deferred& d) { return !live(d.id); };
  if (deferred_.empty()) return;
  if (retired(deferred_.back())) {
    deferred_.erase(std::remove_if(deferred_.begin(), deferred_.end(), retired), deferred_.end());
    return;
  }
  // The list ends with a live entry (paged attention's wide submits, one ring): a retired entry
  // past the first live one waits for a later compaction, and so does a retired prefix shorter
  // than the live rest (moving that rest down cost more than the scan it saved: memmove ~24
  // instructions a wide submit in paged attention's steady round).
  const auto live_from = std::find_if_not(deferred_.begin(), deferred_.end(), retired);
  if (live_from - deferred_.begin() >= deferred_.end() - live_from) {
    deferred_.erase(deferred_.begin(), live_from);
  }
}

std::int64_t LoopDriver::iteration_of(const Loop& loop, std::uint64_t task_index) const {
  const std::vector<std::uint64_t>& starts = loop.table->iteration_start;
  const auto it = std::upper_bound(starts.begin(), starts.end(), task_index);
  return static_cast<std::int64_t>(it - starts.begin()) - 1;
}

BufferRef LoopDriver::buffer_of(const Loop& loop, const Tensor& tensor) const {
  BufferRef ref;
  const TaskId owner = tensor.producer();
  if (owner.valid() && owner.ring() < static_cast<std::uint32_t>(kRingCount)) {
    Ring& ring = *rings_[owner.ring()];
    const TaskSlot& slot = ring.slot(owner.local());
    if (!ring.is_retired(owner) && slot.id == owner) {
      const std::uint64_t sequence = ring.sequence(owner.local());
      const std::uint64_t index = sequence - loop.first_sequence;
      if (sequence >= loop.first_sequence && index < loop.table->tasks.size()) {
        ref.kind = BufferRef::Kind::fresh;
        ref.iteration = iteration_of(loop, index);
        ref.task = static_cast<std::uint32_t>(
            index - loop.table->iteration_start[static_cast<std::size_t>(ref.iteration)]);
        const TaskRecord& record = *slot.record;
        for (int a = 0; a < record.tensor_count; ++a) {
          if (record.tensors[a].buffer() == tensor.buffer()) {
            ref.arg = static_cast<std::uint32_t>(a);
            break;
          }
        }
        return ref;
      }
    }
  }
  ref.address = reinterpret_cast<std::uintptr_t>(tensor.buffer());
  ref.owner = owner.value();
  return ref;
}

void LoopDriver::build_plans(Loop& loop) {
  const loops::LoopTemplate& tmpl = loop.tmpl;
  loop.task_plans.resize(tmpl.task_count());
  loop.plan_count = tmpl.task_count();
  for (std::uint32_t q = 0; q < tmpl.task_count(); ++q) {
    const loops::TaskRecordLite& rec = tmpl.task(q);
    TaskPlan& plan = loop.task_plans[q];
    std::copy(std::begin(rec.kernels), std::end(rec.kernels), std::begin(plan.kernels));
    plan.inline_task = rec.inline_task;
    plan.first_access = rec.first_access;
    plan.access_count = rec.access_count;
  }
  loop.plans.clear();
  loop.plans.resize(tmpl.access_count());
  for (std::uint32_t a = 0; a < tmpl.access_count(); ++a) {
    const loops::AccessRecord& rec = tmpl.access(a);
    AccessPlan& plan = loop.plans[a];
    plan.tag = rec.tag;
    plan.tracked = loops::is_tracked(rec.tag);
    if (rec.tag == ArgTag::out) build_spec_image(plan, rec.tensor);
    if (!plan.tracked) continue;
    plan.outer = rec.buffer.kind == BufferRef::Kind::outer;
    plan.address = rec.buffer.address;
    plan.owner = rec.buffer.owner;
    plan.back = tmpl.base_iteration() - rec.buffer.iteration;
    plan.task = rec.buffer.task;
    plan.arg = rec.buffer.arg;
    const Tensor& v = rec.tensor;
    plan.version = v.version();
    plan.layout_offset = v.layout_offset();
    plan.dtype = v.dtype();
    plan.ndims = static_cast<std::uint8_t>(v.ndims());
    for (int r = 0; r < v.ndims(); ++r) {
      plan.raw[r] = v.raw_dim(r);
      plan.extent[r] = v.box_extent(r);
      plan.offset[r] = v.box_offset(r);
      plan.stride[r] = tmpl.stride(a)[static_cast<std::size_t>(r)];
    }
    plan.free_read = tmpl.free_read(a);
    plan.stationary = tmpl.stationary_write(a);
    plan.dense = loop.dense[a];
    plan.fixed = loop.fixed[a];
    plan.quiet = plan.outer && !TaskId::from_value(rec.buffer.owner).valid() && !plan.dense &&
                 loop.external[a].empty();
  }
  for (TaskPlan& task : loop.task_plans) {
    for (std::uint32_t k = 0; k < task.access_count; ++k) {
      const std::uint32_t a = task.first_access + k;
      AccessPlan& plan = loop.plans[a];
      const std::uint32_t bit = 1u << k;
      if (plan.tracked && !build_image(loop, plan, tmpl.access(a).tensor)) {
        if (plan.free_read && plan.outer && loop.families[a] != nullptr) {
          // A free read whose learned stride leaves the wide compare's range (a KV block through
          // a block table, going backwards): its views may be anywhere anyway, so it starts as
          // plan_analysed leaves a free read whose view left its stride (its family closed
          // with no iteration, its entry deferred, checked by buffer, version and dtype), and
          // the rest of the position still replays (closed_replayable, below).
          loops::FamilyTable::close(loop.families[a]);
          loop.families[a] = nullptr;
          task.deferred_reads |= bit;
        } else {
          task.replayable = false;
        }
      }
      const auto tag_bits = static_cast<std::uint64_t>(plan.tag) << (8 * (k % 8));
      task.tag_word[k / 8] |= tag_bits;
      task.tag_mask[k / 8] |= std::uint64_t{0xff} << (8 * (k % 8));
      if (plan.tracked && (task.deferred_reads & bit) == 0)
        (plan.outer ? task.outer_tracked : task.fresh_tracked) |= bit;
      if (plan.tag != ArgTag::out) task.collect |= bit;
      if (plan.tag == ArgTag::out) task.outs |= bit;
      if (plan.tracked) task.tracked |= bit;
      if (plan.quiet) task.quiet |= bit;
      if (loop.families[a] != nullptr) task.family |= bit;
    }
    if (task.deferred_reads != 0 && task.replayable) {
      task.replayable = false;
      task.closed_replayable = true;
    }
    // Made by an earlier position of the same iteration, for each: what replay_wide then tests
    // by the loop's table alone (not the position per submit: the template's creator came first).
    const auto here = static_cast<std::uint32_t>(&task - loop.task_plans.data());
    task.fresh_here = true;
    for (std::uint32_t todo = task.fresh_tracked; todo != 0; todo &= todo - 1) {
      const AccessPlan& plan = loop.plans[task.first_access + std::countr_zero(todo)];
      if (plan.back != 0 || plan.task >= here) task.fresh_here = false;
    }
    task.prepared.layout_ready = false;
    task.prepared.wide_ready = false;
    list_families(loop, task);
    narrow_images(loop, task);
    const std::uint32_t position = static_cast<std::uint32_t>(&task - loop.task_plans.data());
    set_edges(tmpl, task, position);
    route_producers(loop, task);
    refresh_fast(task);
  }
  loop.routes_deps = tmpl.deps_id();
}

void LoopDriver::route_producers(const Loop& loop, TaskPlan& task) const {
  const auto position = static_cast<std::uint32_t>(&task - loop.task_plans.data());
  task.direct = true;
  task.created = true;
  task.producers.clear();
  task.steps.clear();
  for (std::uint32_t todo = task.collect & ~(task.family & task.quiet); todo != 0;
       todo &= todo - 1) {
    const int k = std::countr_zero(todo);
    const std::uint32_t a = task.first_access + static_cast<std::uint32_t>(k);
    const AccessPlan& plan = loop.plans[a];
    const std::uint32_t bit = 1u << k;
    // collect()'s route for it needs no lookup: a buffer the same iteration made (its creator,
    // deferred), or a free read whose family closed with nothing outside the loop (deferred).
    const bool made_here = plan.tracked && !plan.outer && plan.back == 0;
    const bool closed_quiet = plan.tracked && plan.outer && (task.deferred_reads & bit) != 0 &&
                              !TaskId::from_value(plan.owner).valid() && !plan.dense &&
                              !plan.stationary && loop.external[a].empty();
    if (made_here || closed_quiet) {
      task.direct = false;
      if (made_here && std::none_of(task.steps.begin(), task.steps.end(), [&](const auto& s) {
            return s.arg != TaskPlan::kExternalStep && s.position == plan.task;
          })) {
        const std::vector<std::uint32_t>& same = loop.tmpl.deps(position).same_iteration;
        const bool edge = std::find(same.begin(), same.end(), plan.task) != same.end();
        task.steps.push_back(
            TaskPlan::Step{TaskId(), static_cast<std::uint32_t>(k), plan.task, edge});
      }
      continue;
    }
    if (!plan.tracked || !plan.outer || TaskId::from_value(plan.owner).valid() || plan.dense ||
        plan.stationary || ((task.family >> k) & 1u) == 0 ||
        (!plan.fixed && !loop.external[a].empty())) {
      task.direct = false;
      task.created = false;
      task.producers.clear();
      task.steps.clear();
      task.single = TaskId();
      route_wide(loop, task, position);  // clears the wide list
      return;
    }
    if (plan.fixed) {
      // Each once, in first-met order (two accesses may meet one external entry's task).
      for (const MapEntry& e : loop.fixed_external[a]) {
        if (std::find(task.producers.begin(), task.producers.end(), e.task_id) ==
            task.producers.end()) {
          task.producers.push_back(e.task_id);
          task.steps.push_back(TaskPlan::Step{e.task_id, TaskPlan::kExternalStep, 0, false});
        }
      }
    }
  }
  if (task.direct) {
    task.created = false;
    task.steps.clear();
  } else {
    task.producers.clear();
  }
  task.single = !task.edges && task.producers.size() == 1 ? task.producers[0] : TaskId();
  route_wide(loop, task, position);
}

void LoopDriver::route_wide(const Loop& loop, TaskPlan& task, std::uint32_t position) {
  task.wide_external_count = 0;
  task.wide_same_count = 0;
  task.wide_carried_count = 0;
  task.wide_listed = false;
  if (task.inline_task || (!task.direct && !task.created)) return;  // never wide
  const loops::TemplateTaskDeps& deps = loop.tmpl.deps(position);
  // Carried edges of one producer position may reach one task twice: left to list_once.
  for (std::size_t a = 0; a < deps.carried.size(); ++a) {
    for (std::size_t b = a + 1; b < deps.carried.size(); ++b) {
      if (deps.carried[a].producer == deps.carried[b].producer) return;
    }
  }
  if (deps.carried.size() > TaskPlan::kWideCarried) return;
  for (const loops::CarriedEdge& e : deps.carried)
    task.wide_carried[task.wide_carried_count++] = e;
  // Adds position q once (a creator's flag joins an edge's); false when the array is full.
  const auto add_same = [&](std::uint32_t q, bool creator) {
    for (std::uint32_t k = 0; k < task.wide_same_count; ++k) {
      if (task.wide_same[k].position == q) {
        task.wide_same[k].creator = task.wide_same[k].creator || creator;
        return true;
      }
    }
    if (task.wide_same_count == TaskPlan::kWideSame) return false;
    task.wide_same[task.wide_same_count++] = TaskPlan::WideSame{q, creator};
    return true;
  };
  const auto add_external = [&](TaskId id) {  // each once already (route_producers)
    if (task.wide_external_count == TaskPlan::kWideExternal) return false;
    task.wide_external[task.wide_external_count++] = id;
    return true;
  };
  for (const std::uint32_t q : deps.same_iteration) {
    if (!add_same(q, false)) return;
  }
  if (task.direct) {
    for (const TaskId id : task.producers) {
      if (!add_external(id)) return;
    }
  } else {
    for (const TaskPlan::Step& step : task.steps) {
      if (step.arg == TaskPlan::kExternalStep ? !add_external(step.id)
                                              : !add_same(step.position, true)) {
        return;
      }
    }
  }
  // Fixed external producers are tasks of no analysed iteration (the map's entries when the
  // analysis started), so none is a task the edges or creators name.
  task.wide_listed = true;
}

int LoopDriver::direct_producers_call(const Args& args, TaskSlot** out, int capacity,
                                      AccessRegion* regions) const {
  return direct_producers(args, out, capacity, regions);
}

void LoopDriver::pack_image(AccessPlan& plan, const unsigned char* image, unsigned char* mask) {
  constexpr std::size_t kFront = kWordAt[kWords - 2] + sizeof(Word);
  std::memcpy(&plan.image[kWords - 1], image + kWordAt[kWords - 1], sizeof(Word));
  std::memcpy(&plan.mask[kWords - 1], mask + kWordAt[kWords - 1], sizeof(Word));
  std::memset(mask + kWordAt[kWords - 1], 0, kFront - kWordAt[kWords - 1]);
  std::memcpy(&plan.image[0], image, kFront);
  std::memcpy(&plan.mask[0], mask, kFront);
  plan.start[0] = plan.image[kStepWord];
  plan.start[1] = plan.image[kStepWord + 1];
}

bool LoopDriver::build_image(const Loop& loop, AccessPlan& plan, const Tensor& v) {
  constexpr Tensor::FieldOffsets at = Tensor::field_offsets();
  unsigned char image[sizeof(Tensor)];
  unsigned char mask[sizeof(Tensor)] = {};
  std::memcpy(image, &v, sizeof(Tensor));
  const auto cover = [&](std::size_t from, std::size_t n) { std::memset(mask + from, 0xff, n); };
  if (plan.outer) {  // a fresh buffer's identity is the creator's (wide_fresh_view)
    cover(at.base, sizeof(void*));
    cover(at.owner, sizeof(TaskId));
  }
  cover(at.layout_offset, sizeof(std::uint64_t));
  cover(at.version, sizeof(std::uint32_t));
  cover(at.dtype, sizeof(DType));
  cover(at.ndims, sizeof(std::uint8_t));
  // The box offsets of iteration base + k are offset + k * stride for k in [0, last]: linear, so
  // inside [0, 2^32) at both ends means inside at every k, and lane-wise uint32 sums are exact.
  const std::int64_t last =
      std::max<std::int64_t>(0, loop.iterations - 1 - loop.tmpl.base_iteration());
  std::uint32_t steps[8] = {};  // words kStepWord and kStepWord + 1 as uint32 lanes
  for (int r = 0; r < plan.ndims; ++r) {
    const auto bytes = static_cast<std::size_t>(4 * r);
    cover(at.raw_shape + bytes, 4);
    cover(at.offsets + bytes, 4);
    cover(at.extents + bytes, 4);
    cover(at.perm + static_cast<std::size_t>(r), 1);
    const std::int64_t s = plan.stride[r];
    const std::uint64_t magnitude =
        s < 0 ? 0 - static_cast<std::uint64_t>(s) : static_cast<std::uint64_t>(s);
    if (last > 0 && magnitude > 0xffffffffu / static_cast<std::uint64_t>(last)) return false;
    const std::int64_t end = plan.offset[r] + last * s;
    if (end < 0 || end > std::int64_t{0xffffffff}) return false;
    steps[(at.offsets + bytes - kWordAt[kStepWord]) / 4] = static_cast<std::uint32_t>(s);
  }
  // Words 0 .. kWords - 2 are the Tensor's bytes in order; the last overlaps the one before it,
  // where only the earlier word's mask counts.
  // The last word's mask covers all of its bytes, the one before it only those before them (so
  // a view of rank 2 or less has nothing to compare there: TaskPlan::narrow).
  pack_image(plan, image, mask);
  std::memcpy(&plan.step, steps, sizeof(steps));
  return true;
}

void LoopDriver::build_spec_image(AccessPlan& plan, const Tensor& spec) {
  // Every byte but the trailing padding, in the words same_image reads (build_image's packing:
  // the last word's mask covers its bytes, the one before it only those before them), no step.
  constexpr std::size_t kEnd = Tensor::field_offsets().perm + kMaxDims;
  unsigned char image[sizeof(Tensor)];
  unsigned char mask[sizeof(Tensor)] = {};
  std::memcpy(image, &spec, sizeof(Tensor));
  std::memset(mask, 0xff, kEnd);
  pack_image(plan, image, mask);
  plan.step[0] = plan.step[1] = Word{};
}

bool LoopDriver::place_images(Loop& loop, TaskPlan& task) {
  const std::int64_t m = loop.iteration - loop.tmpl.base_iteration();
  if (m < 0 || m >= loop.iterations - loop.tmpl.base_iteration()) {
    task.replayable = false;  // outside what build_image proved exact: plan_analysed decides
    task.closed_replayable = false;
    task.fast = false;
    task.wide = false;
    loop.plans_changed = true;  // (trusted_wide tests wide and fast per submit)
    return false;
  }
  // One iteration before (same_image moves it on): modulo 2^32 like every lane.
  const auto k = static_cast<std::uint32_t>(m) - 1u;
  const Word moved = {k, k, k, k};
  AccessPlan* const plans = loop.plans.data() + task.first_access;
  for (std::uint32_t a = 0; a < task.access_count; ++a) {
    if (!plans[a].tracked) continue;
    plans[a].image[kStepWord] = plans[a].start[0] + moved * plans[a].step[0];
    plans[a].image[kStepWord + 1] = plans[a].start[1] + moved * plans[a].step[1];
  }
  return true;
}

void LoopDriver::narrow_images(const Loop& loop, TaskPlan& task) {
  task.narrow = true;
  for (std::uint32_t todo = task.outer_tracked | task.fresh_tracked; todo != 0; todo &= todo - 1) {
    const AccessPlan& plan = loop.plans[task.first_access + std::countr_zero(todo)];
    if (!zero_word(plan.mask[kWords - 2]) || !zero_word(plan.step[1])) task.narrow = false;
  }
  // Fresh outputs and closed free reads have no step (build_spec_image; no image).
  task.stepped = 0;
  for (std::uint32_t todo = task.outer_tracked | task.fresh_tracked; todo != 0; todo &= todo - 1) {
    const int k = std::countr_zero(todo);
    const AccessPlan& plan = loop.plans[task.first_access + static_cast<std::uint32_t>(k)];
    if (!zero_word(plan.step[0]) || !zero_word(plan.step[1])) task.stepped |= 1u << k;
  }
  const auto every = static_cast<std::uint32_t>((std::uint64_t{1} << task.access_count) - 1);
  task.outer_only = task.narrow && task.outer_tracked == every;
  task.exact_compare = exact_wide_for(task.access_count, task.narrow);
  task.masked_compare = masked_wide_for(task.access_count);
}

void LoopDriver::list_families(const Loop& loop, TaskPlan& task) {
  task.grow_count = 0;
  task.grow_started = false;
  task.grow_four = false;
  for (std::uint32_t mask = task.family; mask != 0; mask &= mask - 1) {
    const auto k = static_cast<std::uint32_t>(std::countr_zero(mask));
    task.grow[task.grow_count++] = TaskPlan::Grow{loop.families[task.first_access + k], k};
  }
}

void LoopDriver::pad_grow(const Args& args) {
  grow_families(args);
  TaskPlan& task = *covered_;
  if (task.grow_count > 4) return;
  for (std::uint32_t g = task.grow_count; g < 4; ++g)
    task.grow[g] = TaskPlan::Grow{&spare_family_, 0};
  task.grow_four = true;
}

int LoopDriver::routed_producers(const Args& args, TaskSlot** out, int n, int capacity,
                                 AccessRegion* regions) const {
  const Loop& loop = *owner_;
  const std::int64_t i = loop.iteration;
  const TaskPlan& task = *covered_;  // loop.task_plans[loop.position]
  // collect()'s routes that need neither the map nor the family table, in its order; any other
  // route (a map lookup, a creator that is an error) leaves the task to collect().
  const AccessPlan* const plans = loop.plans.data() + task.first_access;
  for (std::uint32_t todo = task.collect & ~quiet_mask_; todo != 0; todo &= todo - 1) {
    const int k = std::countr_zero(todo);
    const AccessPlan& plan = plans[k];
    const Tensor& t = args.tensor(k);
    const TaskId creator = t.producer();
    if (creator.valid()) {
      if (creator.ring() >= rings_.size() || !dependence_.creator_retained(creator) ||
          !live(creator)) {
        return -1;  // collect() names the error
      }
      if (!list_once(out, &n, capacity, creator)) return -1;
    }
    if (!plan.tracked) continue;
    const bool in_family = (family_mask_ >> k) & 1u;
    if ((fresh_mask_ >> k) & 1u) {
      if (made_[k] < loop.first_analysed) return -1;  // its earlier accessors are in the map
      continue;
    }
    if (plan.stationary && i > loop.first_analysed) continue;
    if (plan.dense) return -1;
    const auto a = static_cast<std::uint32_t>(&plan - loop.plans.data());
    const std::vector<MapEntry>& external = loop.external[a];
    if (!external.empty() && !(plan.fixed && (in_family || !plan.free_read))) return -1;
    for (const MapEntry& e : plan.fixed ? loop.fixed_external[a] : external) {
      if (live(e.task_id) && !list_once(out, &n, capacity, e.task_id)) return -1;
    }
  }
  // The regions record() reads (accesses that go into the map), as collect() fills them.
  for (std::uint32_t todo = tracked_mask_ & ~(family_mask_ | deferred_mask_); todo != 0;
       todo &= todo - 1) {
    const int k = std::countr_zero(todo);
    regions[k] = make_region(args.tensor(k));
  }
  return n;
}

LoopDriver::Replay LoopDriver::replay_access(const Loop& loop, std::uint32_t a, const Tensor& t,
                                             std::int64_t* made) const {
  const AccessPlan& plan = loop.plans[a];
  const std::int64_t i = loop.iteration;
  const std::int64_t base = loop.tmpl.base_iteration();
  if (plan.outer) {
    if (reinterpret_cast<std::uintptr_t>(t.buffer()) != plan.address ||
        t.producer().value() != plan.owner) {
      return Replay::no;
    }
  } else {
    // Output `arg` of template task `task`, made `back` iterations earlier: its task id is in the
    // loop's table (iterations from the template's predecessor on have the template's shape).
    const std::int64_t m = i - plan.back;
    if (m < base - 1 || (m == i && plan.task >= loop.position)) return Replay::no;
    const TaskId creator = loop.table->at(m, plan.task);
    if (t.producer() != creator || !live(creator)) return Replay::no;
    if (rings_[creator.ring()]->record(creator.local()).tensors[plan.arg].buffer() != t.buffer()) {
      return Replay::no;
    }
    *made = m;
  }
  // The template's view moved by the stride: with the template's layout offset, placements differ
  // exactly as box offsets do, so this is predicts_view's test without computing placements.
  if (t.version() != plan.version) return Replay::no;  // a free read checks only the version
  bool same =
      t.layout_offset() == plan.layout_offset && t.ndims() == plan.ndims && t.dtype() == plan.dtype;
  if (same) {
    const std::int64_t k = i - base;
    for (int r = 0; r < plan.ndims; ++r) {
      if (t.raw_dim(r) != plan.raw[r] || t.box_extent(r) != plan.extent[r] ||
          std::int64_t{t.box_offset(r)} != plan.offset[r] + k * plan.stride[r]) {
        same = false;
        break;
      }
    }
  }
  if (same) return Replay::exact;
  // A free read may move anywhere (whether its family holds is the caller's question); any other
  // access may be another spelling of the same box (a reshaped slice): the full test decides.
  if (plan.free_read) return Replay::moved;
  return loop.tmpl.predicts_view(i, a, t) ? Replay::exact : Replay::no;
}

void LoopDriver::plan_learning(Loop& loop, const KernelId kernels[3], bool inline_task,
                               const Args& args) {
  loop.current.add_task(kernels, inline_task);
  for (int k = 0; k < args.tensor_count(); ++k) {
    const ArgTag tag = args.tag(k);
    refs_[k] = loops::is_tracked(tag) ? buffer_of(loop, args.tensor(k)) : BufferRef{};
    loop.current.add_access(tag, refs_[k], args.tensor(k));
  }
}

template <bool closed>
bool LoopDriver::replays(Loop& loop, TaskPlan& task, const KernelId kernels[3], bool inline_task,
                         const Args& args) {
  const int count = args.tensor_count();
  if (task.inline_task != inline_task || static_cast<int>(task.access_count) != count ||
      task.kernels[0] != kernels[0] || task.kernels[1] != kernels[1] ||
      task.kernels[2] != kernels[2]) {
    return false;
  }
  if (!same_tags(task, args)) return false;
  if (task.image_iteration + 1 != loop.iteration && !place_images(loop, task)) return false;
  // Each tracked argument's image moves one iteration on as it is compared; a miss leaves them
  // stale (the next replays places them again).
  task.image_iteration = kStaleImages;
  AccessPlan* const plans = loop.plans.data() + task.first_access;
  // Outer buffers: their families, if they have one, stand (task.family says so).
  // Every argument an outer tracked one (e.g. a slice write over outer buffers, with no fresh
  // outputs): a counted walk over plans and tensors side by side, without a bit scan and two
  // index multiplications per argument.
  if (task.outer_only) {
    for (int k = 0; k < count; ++k) {
      if (!same_image<true>(plans[k], args.tensor(k))) return false;
    }
  } else if (task.narrow) {
    for (std::uint32_t todo = task.outer_tracked; todo != 0; todo &= todo - 1) {
      const int k = std::countr_zero(todo);
      if (!same_image<true>(plans[k], args.tensor(k))) return false;
    }
  } else {
    for (std::uint32_t todo = task.outer_tracked; todo != 0; todo &= todo - 1) {
      const int k = std::countr_zero(todo);
      if (!same_image<false>(plans[k], args.tensor(k))) return false;
    }
  }
  // Free reads whose family closed: plan_analysed accepts any view of the template's buffer at
  // its version (the template writes no part of it, see deferred_reads); their entries wait.
  std::uint32_t deferred_mask = 0;
  if constexpr (closed) {
    deferred_mask = task.deferred_reads;
    for (std::uint32_t todo = task.deferred_reads; todo != 0; todo &= todo - 1) {
      const int k = std::countr_zero(todo);
      const AccessPlan& plan = plans[k];
      const Tensor& t = args.tensor(k);
      if (reinterpret_cast<std::uintptr_t>(t.buffer()) != plan.address ||
          t.producer().value() != plan.owner || t.version() != plan.version ||
          t.dtype() != plan.dtype) {
        return false;
      }
    }
  }
  for (std::uint32_t todo = task.fresh_tracked; todo != 0; todo &= todo - 1) {
    const int k = std::countr_zero(todo);
    if (!wide_fresh_view(loop, plans[k], args.tensor(k), &made_[k])) return false;
    // A buffer made by an analysed iteration: its map entry waits (plan_analysed).
    if (made_[k] >= loop.first_analysed) deferred_mask |= 1u << k;
  }
  task.image_iteration = loop.iteration;
  family_mask_ = task.family;
  quiet_mask_ = task.family & task.quiet;
  deferred_mask_ = deferred_mask;
  tracked_mask_ = task.tracked;
  fresh_mask_ = task.fresh_tracked;
  covered_ = &task;
  planned_analysed_ = true;
  return true;
}

template bool LoopDriver::replays<false>(Loop&, TaskPlan&, const KernelId[3], bool, const Args&);
template bool LoopDriver::replays<true>(Loop&, TaskPlan&, const KernelId[3], bool, const Args&);

LoopDriver::ReplayPlan* LoopDriver::replay_wide(const KernelId kernels[3], const Args& args,
                                                Tensor* tensors) {
  Loop& loop = *owner_;
  TaskPlan& task = loop.task_plans[loop.position];  // wide_position() held: analysing, wide
  const int count = args.tensor_count();
  // The position's own kept plan (wide_plan(), OrchestratorCore::submit_new_kernels) names its
  // kernels: this replay compared them when the plan was kept (PreparedTask::plan_ready).
  const bool kept = kernels == task.prepared.plan.kernels;
  if (static_cast<int>(task.access_count) != count ||
      (!kept && (task.kernels[0] != kernels[0] || task.kernels[1] != kernels[1] ||
                 task.kernels[2] != kernels[2])) ||
      !same_tags(task, args)) {
    return nullptr;  // a kernel task (TaskPlan::wide), as alloc() never takes this path
  }
  if (task.image_iteration + 1 != loop.iteration && !place_images(loop, task)) return nullptr;
  task.image_iteration = kStaleImages;  // as in replays: a miss leaves the images stale
  AccessPlan* const plans = loop.plans.data() + task.first_access;
  // Outer tracked accesses and buffers the iteration made: their images (a fresh buffer's
  // without its identity, checked below); fresh outputs: the template's spec, every byte; closed
  // free reads: copied here, checked below. Every argument is copied.
  const std::uint32_t imaged = task.outer_tracked | task.fresh_tracked | task.outs;
  if (wide_compare_) {
    // The same compare in 32-byte words, out of line.
    if (!task.masked_compare(plans, args, count, tensors, imaged, task.stepped)) return nullptr;
  } else {
    Word diff = {};
    for (int k = 0; k < count; ++k) {
      if ((imaged >> k) & 1u) {
        copy_image<false>(plans[k], args.tensor(k), tensors + k, &diff);
      } else {
        std::memcpy(static_cast<void*>(tensors + k), &args.tensor(k), sizeof(Tensor));
      }
    }
    if (!zero_diff(diff)) return nullptr;
  }
  // Free reads whose family closed: any view of the template's buffer at its version
  // (replays<true>'s test).
  for (std::uint32_t todo = task.deferred_reads; todo != 0; todo &= todo - 1) {
    const int k = std::countr_zero(todo);
    const AccessPlan& plan = plans[k];
    const Tensor& t = tensors[k];
    if (reinterpret_cast<std::uintptr_t>(t.buffer()) != plan.address ||
        t.producer().value() != plan.owner || t.version() != plan.version ||
        t.dtype() != plan.dtype) {
      return nullptr;
    }
  }
  // Buffers the same iteration made (TaskPlan::fresh_here): their creator is the template's, by
  // the loop's table, live, and that output's buffer (made_by_template's tests with `back` 0:
  // the creator is this iteration's task at an earlier position). Arguments of one creator
  // (softmax's m and l, the accumulators of one alloc) are next to each other: its liveness
  // and record are looked up once for the run of them.
  if (task.fresh_tracked != 0) {
    // (Made by an analysed iteration, so their entries are deferred: below.)
    if (loop.iteration < loop.tmpl.base_iteration() - 1 || loop.iteration < loop.first_analysed)
      return nullptr;
    // made_ is left as it was (wide_state() writes it for the steps that read it): its stores
    // here made the table's row, the rings and the iteration reloads for every argument.
    const loops::LoopTasks& table = *loop.table;
    const std::uint64_t* const row =
        table.tasks.values() + table.iteration_start[static_cast<std::size_t>(loop.iteration)];
    Ring* const* const rings = rings_.data();
    TaskId last;
    const TaskRecord* record = nullptr;  // of `last`, once one is looked up
    for (std::uint32_t todo = task.fresh_tracked; todo != 0; todo &= todo - 1) {
      const int k = std::countr_zero(todo);
      const AccessPlan& plan = plans[k];  // plan.task < loop.position (fresh_here)
      const TaskId creator = TaskId::from_value(row[plan.task]);
      const Tensor& t = tensors[k];
      if (t.producer() != creator) return nullptr;
      if (record == nullptr || creator != last) {
        Ring& creators = *rings[creator.ring()];  // (one load of the ring for both)
        if (creators.is_retired(creator)) return nullptr;
        last = creator;
        record = &creators.record(creator.local());
      }
      if (record->tensors[plan.arg].buffer() != t.buffer()) return nullptr;
    }
  }
  // Each was made by this iteration (fresh_here: made_[k] would be loop.iteration), an analysed one
  // (tested above), so each entry is deferred. With TaskPlan::wide (every outer tracked access in
  // its family) and a position's tracked accesses split among outer_tracked, fresh_tracked and
  // deferred_reads (build_plans, plan_analysed), every tracked access now goes into a family or
  // is deferred: what wide_producers and OrchestratorCore::submit_wide rely on without testing
  // the masks (records_into_map() is false).
  const std::uint32_t deferred_mask = task.deferred_reads | task.fresh_tracked;
  task.image_iteration = loop.iteration;
  family_mask_ = task.family;
  deferred_mask_ = deferred_mask;
  covered_ = &task;  // analysed: submitted_covered counts it
  wide_passed_ = &task;
  ++tasks_wide_;
  // quiet_mask_, tracked_mask_, fresh_mask_ and made_: wide_state(), for the steps that read them.
  return &task;
}

bool LoopDriver::run_affine(std::uint32_t first, std::uint32_t stride, std::uint32_t count) {
  if (owner_ == nullptr || count < 2 || stride == 0) return false;
  const Loop& loop = *owner_;
  for (const RunProof& p : run_proofs_) {
    if (p.loop != &loop || p.first_analysed != loop.first_analysed || p.stride != stride) continue;
    if (p.first == first && p.count == count) return p.ok;
    // A proven run proves every run inside it (a task verified again later in the same loop).
    if (p.ok && first >= p.first && (first - p.first) % stride == 0 &&
        std::uint64_t{(first - p.first) / stride} + count <= p.count) {
      return true;
    }
  }
  RunProof& proof = run_proofs_[next_run_proof_];
  next_run_proof_ = (next_run_proof_ + 1) % kRunProofs;
  proof = {&loop, loop.first_analysed, first, stride, count, prove_run(loop, first, stride, count)};
  return proof.ok;
}

bool LoopDriver::prove_run(const Loop& loop, std::uint32_t first, std::uint32_t stride,
                           std::uint32_t count) const {
  const std::uint64_t last = first + std::uint64_t{stride} * (count - 1);
  if (last >= loop.plan_count) return false;
  const TaskPlan& a = loop.task_plans[first];
  if (a.inline_task || a.access_count > static_cast<std::uint32_t>(kMaxTensorArgs)) return false;
  const TaskPlan& b = loop.task_plans[first + stride];
  const AccessPlan* const pa = loop.plans.data() + a.first_access;
  const AccessPlan* const pb = loop.plans.data() + b.first_access;
  const std::uint32_t imaged = a.outer_tracked | a.fresh_tracked;
  // What position first + stride * j must hold, per argument, set up once from positions `first`
  // (x) and `first + stride` (y), so the walk over j compares and adds only. The same checks as
  // comparing each position with x (and x + j * (y - x)) field by field: per word, the image
  // bytes under `look` (the mask's bytes of the words compared by image: every word of a fresh
  // output, every word but the box-offset ones of a compared argument) equal x's, the mask
  // equals x's, and the box-offset words' start and step, under x's mask, equal x's moved j
  // times by y's less x's (lane by lane, mod 2^32, as every image lane moves). A mask that
  // differs from x's fails its own compare, so comparing the image under x's mask (look) is
  // comparing it under the position's own. The creator's position of a fresh input moves the
  // same way in 64 bits.
  struct Expect {
    Word look[kWords];
    Word image[kWords];  // x.image & look
    Word mask[kWords];
    Word start[2];  // x's, then moved by d_start per position
    Word step[2];
    Word d_start[2];
    Word d_step[2];
    std::int64_t task = 0;  // fresh input: the creator's position, then moved by d_task
    std::int64_t d_task = 0;
    bool masked = false;  // compared by mask and image (imaged or a fresh output)
  };
  Expect expect[kMaxTensorArgs];
  const Word zero = {0, 0, 0, 0};
  for (std::uint32_t k = 0; k < a.access_count; ++k) {
    const std::uint32_t bit = 1u << k;
    const AccessPlan& x = pa[k];
    const AccessPlan& y = pb[k];
    Expect& e = expect[k];
    e.masked = ((imaged | a.outs) & bit) != 0;
    if (e.masked) {
      for (int w = 0; w < kWords; ++w) {
        const bool step_word = w == kStepWord || w == kStepWord + 1;
        e.look[w] = step_word && (a.outs & bit) == 0 ? zero : x.mask[w];
        e.image[w] = x.image[w] & e.look[w];
        e.mask[w] = x.mask[w];
      }
    }
    for (int h = 0; h < 2; ++h) {
      if ((imaged & bit) != 0) {
        const Word m = x.mask[kStepWord + h];
        e.start[h] = x.start[h] & m;
        e.step[h] = x.step[h] & m;
        e.d_start[h] = (y.start[h] & y.mask[kStepWord + h]) - e.start[h];
        e.d_step[h] = (y.step[h] & y.mask[kStepWord + h]) - e.step[h];
      } else {
        e.start[h] = e.step[h] = e.d_start[h] = e.d_step[h] = zero;
      }
    }
    e.task = std::int64_t{x.task};
    e.d_task = std::int64_t{y.task} - std::int64_t{x.task};
  }
  for (std::uint32_t j = 1; j < count; ++j) {
    const TaskPlan& c = loop.task_plans[first + stride * j];
    if (c.inline_task || c.access_count != a.access_count ||
        !std::equal(c.kernels, c.kernels + 3, a.kernels) || c.tag_word[0] != a.tag_word[0] ||
        c.tag_word[1] != a.tag_word[1] || c.tracked != a.tracked ||
        c.outer_tracked != a.outer_tracked || c.fresh_tracked != a.fresh_tracked ||
        c.deferred_reads != a.deferred_reads || c.outs != a.outs || !c.wide || c.fast) {
      return false;
    }
    const AccessPlan* const pc = loop.plans.data() + c.first_access;
    for (std::uint32_t k = 0; k < a.access_count; ++k) {
      const std::uint32_t bit = 1u << k;
      const AccessPlan& x = pa[k];
      const AccessPlan& z = pc[k];
      Expect& e = expect[k];
      if (z.tag != x.tag || z.tracked != x.tracked || z.outer != x.outer) return false;
      if (e.masked) {
        Word differ = zero;
        for (int w = 0; w < kWords; ++w) {
          differ |= (z.mask[w] ^ e.mask[w]) | ((z.image[w] & e.look[w]) ^ e.image[w]);
        }
        if ((imaged & bit) != 0) {
          for (int h = 0; h < 2; ++h) {
            const Word m = e.mask[kStepWord + h];
            e.start[h] += e.d_start[h];
            e.step[h] += e.d_step[h];
            differ |= ((z.start[h] & m) ^ e.start[h]) | ((z.step[h] & m) ^ e.step[h]);
          }
        }
        if ((differ[0] | differ[1] | differ[2] | differ[3]) != 0) return false;
      }
      if ((a.fresh_tracked & bit) != 0) {
        // The creator's position (fresh_here: this iteration's), affine in j: a reference to an
        // earlier task of the same pattern iteration (slope `stride`) or a tensor of the owner's
        // iteration made before the pattern loop (slope 0).
        e.task += e.d_task;
        if (z.back != x.back || z.arg != x.arg || std::int64_t{z.task} != e.task) return false;
      }
      if ((a.deferred_reads & bit) != 0 && (z.address != x.address || z.owner != x.owner ||
                                            z.version != x.version || z.dtype != x.dtype)) {
        return false;
      }
    }
  }
  return true;
}

bool LoopDriver::plan_analysed(Loop& loop, const KernelId kernels[3], bool inline_task,
                               const Args& args) {
  const int count = args.tensor_count();
  if (loop.position >= loop.task_plans.size()) {
    fall_back(loop, Fallback::mismatch);  // more tasks than the template
    return false;
  }
  TaskPlan& task = loop.task_plans[loop.position];
  if (task.inline_task != inline_task || static_cast<int>(task.access_count) != count ||
      task.kernels[0] != kernels[0] || task.kernels[1] != kernels[1] ||
      task.kernels[2] != kernels[2]) {
    fall_back(loop, Fallback::mismatch);
    return false;
  }
  const loops::LoopTemplate& tmpl = loop.tmpl;
  const std::uint32_t first = task.first_access;
  const AccessPlan* const plans = loop.plans.data() + first;
  const std::int64_t moved_by = loop.iteration - tmpl.base_iteration();
  std::uint32_t deferred_mask = 0;
  std::uint32_t fresh_mask = 0;
  for (int k = 0; k < count; ++k) {
    const AccessPlan& plan = plans[k];
    if (args.tag(k) != plan.tag) {
      fall_back(loop, Fallback::mismatch);
      return false;
    }
    if (!plan.tracked) continue;
    const Tensor& t = args.tensor(k);
    // The common case inline: an outer buffer and the template's view moved by the stride (its
    // family, if it has one, stands: task.family already says so).
    if (plan.outer) {
      if (same_outer_view(plan, t, moved_by)) continue;
    } else if (same_fresh_view(loop, plan, t, moved_by, &made_[k])) {
      // A buffer made by an analysed iteration: only the loop's own (analysed) tasks can meet it
      // until the analysis ends, so its map entry waits until then (flush_deferred()).
      fresh_mask |= 1u << k;
      if (made_[k] >= loop.first_analysed) deferred_mask |= 1u << k;
      continue;
    }
    const std::uint32_t a = first + static_cast<std::uint32_t>(k);
    Replay replay = replay_access(loop, a, t, &made_[k]);
    if (replay == Replay::no) {
      // Not the replayed record: the full check (buffer identity by ring lookup, placements).
      const BufferRef ref = buffer_of(loop, t);
      if (!tmpl.predicts_access(loop.iteration, a, args.tag(k), ref, t)) {
        fall_back(loop, Fallback::mismatch);
        return false;
      }
      made_[k] = ref.iteration;
      replay = plan.free_read ? Replay::moved : Replay::exact;
    }
    if (!plan.outer) {
      // As above, after the full check.
      fresh_mask |= 1u << k;
      if (made_[k] >= loop.first_analysed) deferred_mask |= 1u << k;
      continue;
    }
    loops::Family* const f = loop.families[a];
    if (f == nullptr) continue;
    if (replay == Replay::moved && !tmpl.predicts_view(loop.iteration, a, t)) {
      // A free read left its stride (a KV block through a block table): the family ends with
      // the iterations it has; from now on this access is recorded per task (deferred, see
      // deferred_reads) and checked by plan_analysed.
      loops::FamilyTable::close(f);
      loop.families[a] = nullptr;
      task.family &= ~(1u << k);
      task.deferred_reads |= 1u << k;  // its entry waits until a lookup may want it
      forget_runs(loop);
      list_families(loop, task);
      // replays<true> checks it by buffer, version and dtype from now on, not by its image.
      task.outer_tracked &= ~(1u << k);
      narrow_images(loop, task);
      if (task.replayable) {
        task.replayable = false;
        task.closed_replayable = true;
      }
      route_producers(loop, task);  // not direct: collect() visits this access by its route
      refresh_fast(task);
      // Kept as it is now (keep_template): a later run that reuses these plans starts with this
      // read's family closed and its entries deferred, as build_plans starts a free read whose
      // image it cannot build (reuse_plans closes that run's family for it).
    }
  }
  family_mask_ = task.family;
  quiet_mask_ = task.family & task.quiet;  // quiet only while its family stands for it
  deferred_mask_ = deferred_mask | task.deferred_reads;
  tracked_mask_ = task.tracked;
  fresh_mask_ = fresh_mask;
  covered_ = &task;
  planned_analysed_ = true;
  return true;
}

}  // namespace tmr::detail
