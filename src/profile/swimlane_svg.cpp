#include "tmr/profile/swimlane_svg.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <ostream>
#include <utility>
#include <vector>

#include "profile/palette.hpp"
#include "tmr/profile/task_naming.hpp"
#include "tmr/profile/trace_stats.hpp"

namespace tmr::profile {

namespace {

constexpr int kLeft = 78;  // lane labels
constexpr int kRight = 24;
constexpr int kHeader = 46;  // title and summary
constexpr int kClusterGap = 3;
constexpr int kAxisHeight = 34;
constexpr int kLegendRow = 18;
constexpr int kLegendColumn = 250;

std::string num(double value) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.2f", value);
  std::string s = buffer;
  // Trim "12.50" to "12.5" and "12.00" to "12": a smaller file for the same picture.
  while (s.back() == '0')
    s.pop_back();
  if (s.back() == '.') s.pop_back();
  return s;
}

std::string escape(std::string_view text) {
  std::string out;
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// 1, 2 or 5 times a power of ten, giving about `target` ticks over `range`.
double nice_step(double range, int target) {
  const double raw = range / target;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double n = raw / magnitude;
  const double factor = n < 1.5 ? 1 : n < 3.5 ? 2 : n < 7.5 ? 5 : 10;
  return factor * magnitude;
}

struct TimeUnit {
  double ns;
  const char* name;
};
TimeUnit unit_for(double span_ns) {
  if (span_ns >= 2e6) return {1e6, "ms"};
  if (span_ns >= 2e3) return {1e3, "\xC2\xB5s"};  // µs
  return {1, "ns"};
}

// Busy pixels per kernel in one pixel column of one lane (tasks narrower than a pixel).
using Column = std::vector<std::pair<KernelId, double>>;

void add_busy(Column& column, KernelId kernel, double pixels) {
  for (auto& [k, busy] : column) {
    if (k == kernel) {
      busy += pixels;
      return;
    }
  }
  column.emplace_back(kernel, pixels);
}

class SvgWriter {
 public:
  SvgWriter(std::ostream& out, const Trace& trace, const KernelRegistry& kernels,
            const SwimlaneOptions& options)
      : out_(out), trace_(trace), kernels_(kernels), options_(options) {
    clusters_ = trace.clusters;
    for (const SubtaskEvent& s : trace.subtasks)
      clusters_ = std::max(clusters_, static_cast<int>(s.cluster) + 1);
    makespan_ = static_cast<double>(std::max<std::uint64_t>(makespan_ns(trace), 1));
    px_per_ns_ = options.plot_width / makespan_;
    lanes_top_ = kHeader + options.lane_height + 8;  // below the orchestrator lane
    plot_bottom_ = lanes_top_ + clusters_ * (kLanesPerCluster * options.lane_height + kClusterGap);
    for (const SubtaskEvent& s : trace.subtasks) {
      if (s.task_sequence < trace.tasks.size()) ++kernel_counts_[kernel_of(s)];
    }
    const int legend_columns = std::max(1, (options.plot_width + kLeft) / kLegendColumn);
    const int legend_entries = static_cast<int>(kernel_counts_.size()) + 2;
    height_ = plot_bottom_ + kAxisHeight +
              kLegendRow * ((legend_entries + legend_columns - 1) / legend_columns) + 12;
    width_ = kLeft + options.plot_width + kRight;
  }

  void write() {
    out_ << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
         << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width_ << "\" height=\""
         << height_ << "\" viewBox=\"0 0 " << width_ << " " << height_
         << "\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"10\">\n"
         << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
    write_header();
    write_lane_backgrounds();
    write_grid_and_axis();
    write_submits();
    write_cores();
    write_legend();
    out_ << "</svg>\n";
  }

 private:
  KernelId kernel_of(const SubtaskEvent& s) const {
    return s.slot < 3 ? trace_.tasks[s.task_sequence].kernels[s.slot] : kNoKernel;
  }
  double x_of(double ns) const { return kLeft + ns * px_per_ns_; }
  int lane_top(int cluster, int lane) const {
    return lanes_top_ + cluster * (kLanesPerCluster * options_.lane_height + kClusterGap) +
           lane * options_.lane_height;
  }

  void write_header() {
    const TimeUnit unit = unit_for(makespan_);
    std::size_t inline_tasks = 0;
    for (const TaskEvent& t : trace_.tasks)
      inline_tasks += t.inline_task ? 1 : 0;
    out_ << "<text x=\"" << kLeft << "\" y=\"18\" font-size=\"14\" font-weight=\"bold\">"
         << escape(options_.title) << "</text>\n"
         << "<text x=\"" << kLeft << "\" y=\"34\" fill=\"#444\">" << trace_.tasks.size()
         << " tasks (" << inline_tasks << " hidden alloc), " << trace_.subtasks.size()
         << " subtasks on " << clusters_ << " clusters x (AIC, AIV0, AIV1); makespan "
         << num(makespan_ / unit.ns) << " " << unit.name
         << "; each lane is one core, time runs left to right</text>\n";
  }

  void write_lane_backgrounds() {
    const int lh = options_.lane_height;
    const int font = std::max(6, std::min(10, lh - 2));
    out_ << "<g font-size=\"" << font << "\" fill=\"#333\">\n";
    out_ << "<rect x=\"" << kLeft << "\" y=\"" << kHeader << "\" width=\"" << options_.plot_width
         << "\" height=\"" << lh << "\" fill=\"#f0f0f0\"/>\n";
    out_ << "<text x=\"" << kLeft - 4 << "\" y=\"" << kHeader + lh - 2
         << "\" text-anchor=\"end\">submits</text>\n";
    for (int c = 0; c < clusters_; ++c) {
      out_ << "<rect x=\"" << kLeft << "\" y=\"" << lane_top(c, 0) << "\" width=\""
           << options_.plot_width << "\" height=\"" << kLanesPerCluster * lh << "\" fill=\""
           << (c % 2 == 0 ? "#f4f4f4" : "#fafafa") << "\"/>\n";
      for (int lane = 0; lane < kLanesPerCluster; ++lane) {
        out_ << "<text x=\"" << kLeft - 4 << "\" y=\"" << lane_top(c, lane) + lh - 2
             << "\" text-anchor=\"end\">" << short_lane_name(c, lane) << "</text>\n";
      }
    }
    out_ << "</g>\n";
  }

  void write_grid_and_axis() {
    const TimeUnit unit = unit_for(makespan_);
    const double step = nice_step(makespan_, 10);
    out_ << "<g stroke=\"#d0d0d0\" stroke-width=\"0.5\">\n";
    for (double t = 0; t <= makespan_ * 1.0000001; t += step) {
      out_ << "<line x1=\"" << num(x_of(t)) << "\" y1=\"" << kHeader << "\" x2=\"" << num(x_of(t))
           << "\" y2=\"" << plot_bottom_ << "\"/>\n";
    }
    out_ << "</g>\n<g font-size=\"10\" fill=\"#333\" text-anchor=\"middle\">\n";
    out_ << "<line x1=\"" << kLeft << "\" y1=\"" << plot_bottom_ << "\" x2=\""
         << kLeft + options_.plot_width << "\" y2=\"" << plot_bottom_ << "\" stroke=\"#333\"/>\n";
    for (double t = 0; t <= makespan_ * 1.0000001; t += step) {
      out_ << "<line x1=\"" << num(x_of(t)) << "\" y1=\"" << plot_bottom_ << "\" x2=\""
           << num(x_of(t)) << "\" y2=\"" << plot_bottom_ + 4 << "\" stroke=\"#333\"/>"
           << "<text x=\"" << num(x_of(t)) << "\" y=\"" << plot_bottom_ + 15 << "\">"
           << num(t / unit.ns) << "</text>\n";
    }
    out_ << "<text x=\"" << kLeft + options_.plot_width / 2 << "\" y=\"" << plot_bottom_ + 28
         << "\">time since run start (" << unit.name << ")</text>\n</g>\n";
  }

  // The orchestrator's submits as ticks, summed per pixel column.
  void write_submits() {
    std::vector<int> per_column(static_cast<std::size_t>(options_.plot_width), 0);
    for (const TaskEvent& t : trace_.tasks) {
      const int col = std::clamp(static_cast<int>(static_cast<double>(t.submit_ns) * px_per_ns_), 0,
                                 options_.plot_width - 1);
      ++per_column[static_cast<std::size_t>(col)];
    }
    out_ << "<g fill=\"#555\">\n";
    for (int col = 0; col < options_.plot_width;) {
      const int count = per_column[static_cast<std::size_t>(col)];
      int end = col + 1;
      while (end < options_.plot_width && per_column[static_cast<std::size_t>(end)] == count)
        ++end;
      if (count > 0) {
        out_ << "<rect x=\"" << kLeft + col << "\" y=\"" << kHeader + 1 << "\" width=\""
             << end - col << "\" height=\"" << options_.lane_height - 2 << "\" opacity=\""
             << num(std::min(1.0, 0.3 + 0.15 * count)) << "\"><title>" << count
             << " submit(s)</title></rect>\n";
      }
      col = end;
    }
    out_ << "</g>\n";
  }

  void write_cores() {
    std::vector<std::vector<const SubtaskEvent*>> lanes(
        static_cast<std::size_t>(clusters_ * kLanesPerCluster));
    for (const SubtaskEvent& s : trace_.subtasks) {
      if (s.task_sequence >= trace_.tasks.size()) continue;
      lanes[static_cast<std::size_t>(s.cluster * kLanesPerCluster +
                                     lane_in_cluster(s, trace_.clusters))]
          .push_back(&s);
    }
    const bool tooltips = trace_.subtasks.size() <= options_.max_tooltips;
    std::vector<Column> columns(static_cast<std::size_t>(options_.plot_width));
    for (int c = 0; c < clusters_; ++c) {
      for (int lane = 0; lane < kLanesPerCluster; ++lane) {
        const int y = lane_top(c, lane) + 1;
        const int h = options_.lane_height - 2;
        for (Column& col : columns)
          col.clear();
        for (const SubtaskEvent* s : lanes[static_cast<std::size_t>(c * kLanesPerCluster + lane)]) {
          const double x0 = static_cast<double>(s->start_ns) * px_per_ns_;
          const double x1 = static_cast<double>(std::max(s->end_ns, s->start_ns)) * px_per_ns_;
          const KernelId kernel = kernel_of(*s);
          if (s->staged && s->start_ns > s->dispatch_ns) {
            // Time spent pre-staged in the pending slot: a thin bar under the lane.
            const double xs = static_cast<double>(s->dispatch_ns) * px_per_ns_;
            out_ << "<rect x=\"" << num(kLeft + xs) << "\" y=\"" << y + h - 2 << "\" width=\""
                 << num(std::max(1.0, x0 - xs)) << "\" height=\"2\" fill=\"#888\"><title>staged "
                 << num(static_cast<double>(s->start_ns - s->dispatch_ns) / 1e3)
                 << " us</title></rect>\n";
          }
          if (x1 - x0 >= 1.0) {
            out_ << "<rect x=\"" << num(kLeft + x0) << "\" y=\"" << y << "\" width=\""
                 << num(x1 - x0) << "\" height=\"" << h << "\" fill=\"" << kernel_colour(kernel)
                 << "\"";
            if (tooltips) {
              out_ << "><title>"
                   << escape(subtask_label(trace_.tasks[s->task_sequence], *s, kernels_)) << ": "
                   << num(static_cast<double>(s->end_ns - s->start_ns) / 1e3)
                   << " us</title></rect>\n";
            } else {
              out_ << "/>\n";
            }
            continue;
          }
          // Narrower than a pixel: spread its width over the one or two columns it touches.
          const int first = std::clamp(static_cast<int>(x0), 0, options_.plot_width - 1);
          const int last = std::clamp(static_cast<int>(x1), 0, options_.plot_width - 1);
          for (int col = first; col <= last; ++col) {
            const double overlap = std::min(x1, col + 1.0) - std::max(x0, static_cast<double>(col));
            // A zero-length task still ran: give it a sliver so it is not invisible.
            add_busy(columns[static_cast<std::size_t>(col)], kernel, std::max(overlap, 0.05));
          }
        }
        write_aggregated(columns, y, h);
      }
    }
  }

  // One rect per run of columns with the same dominant kernel and busy level.
  void write_aggregated(const std::vector<Column>& columns, int y, int h) {
    struct Cell {
      KernelId kernel = kNoKernel;
      int level = 0;  // busy tenths, 0: idle
    };
    auto cell_of = [](const Column& column) {
      Cell cell;
      double total = 0, best = -1;
      for (const auto& [kernel, busy] : column) {
        total += busy;
        if (busy > best) best = busy, cell.kernel = kernel;
      }
      if (total > 0) cell.level = std::clamp(static_cast<int>(std::lround(total * 10)), 2, 10);
      return cell;
    };
    const int width = options_.plot_width;
    for (int col = 0; col < width;) {
      const Cell cell = cell_of(columns[static_cast<std::size_t>(col)]);
      int end = col + 1;
      while (end < width) {
        const Cell next = cell_of(columns[static_cast<std::size_t>(end)]);
        if (next.kernel != cell.kernel || next.level != cell.level) break;
        ++end;
      }
      if (cell.level > 0) {
        out_ << "<rect x=\"" << kLeft + col << "\" y=\"" << y << "\" width=\"" << end - col
             << "\" height=\"" << h << "\" fill=\"" << kernel_colour(cell.kernel) << "\"";
        if (cell.level < 10) out_ << " opacity=\"" << num(cell.level / 10.0) << "\"";
        out_ << "/>\n";
      }
      col = end;
    }
  }

  void write_legend() {
    const int columns = std::max(1, (options_.plot_width + kLeft) / kLegendColumn);
    int entry = 0;
    auto position = [&](int index) {
      return std::pair{8 + (index % columns) * kLegendColumn,
                       plot_bottom_ + kAxisHeight + (index / columns) * kLegendRow};
    };
    out_ << "<g font-size=\"11\" fill=\"#222\">\n";
    for (const auto& [kernel, count] : kernel_counts_) {
      const auto [x, y] = position(entry++);
      const KernelInfo* info = kernels_.find(kernel);
      out_ << "<rect x=\"" << x << "\" y=\"" << y << "\" width=\"12\" height=\"12\" fill=\""
           << kernel_colour(kernel) << "\"/><text x=\"" << x + 16 << "\" y=\"" << y + 10 << "\">"
           << escape(kernel_name(kernels_, kernel))
           << (info ? (info->core_type == CoreType::aic ? " (AIC)" : " (AIV)") : "") << ": "
           << count << "</text>\n";
    }
    const auto [sx, sy] = position(entry++);
    out_ << "<rect x=\"" << sx << "\" y=\"" << sy
         << "\" width=\"12\" height=\"12\" fill=\"#555\"/><text x=\"" << sx + 16 << "\" y=\""
         << sy + 10 << "\">orchestrator submits</text>\n";
    const auto [fx, fy] = position(entry++);
    out_ << "<rect x=\"" << fx << "\" y=\"" << fy
         << "\" width=\"12\" height=\"12\" fill=\"#4e79a7\" opacity=\"0.4\"/><text x=\"" << fx + 16
         << "\" y=\"" << fy + 10 << "\">faded: partly busy (tasks &lt; 1 px summed)</text>\n";
    out_ << "</g>\n";
  }

  std::ostream& out_;
  const Trace& trace_;
  const KernelRegistry& kernels_;
  const SwimlaneOptions& options_;
  int clusters_ = 0;
  double makespan_ = 1;
  double px_per_ns_ = 1;
  int lanes_top_ = 0;
  int plot_bottom_ = 0;
  int width_ = 0;
  int height_ = 0;
  std::map<KernelId, std::uint64_t> kernel_counts_;
};

}  // namespace

void write_swimlane_svg(std::ostream& out, const Trace& trace, const KernelRegistry& kernels,
                        const SwimlaneOptions& options) {
  SvgWriter(out, trace, kernels, options).write();
}

}  // namespace tmr::profile
